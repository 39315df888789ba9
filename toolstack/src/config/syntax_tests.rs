//! Unit tests of the generic xl.cfg syntax.

use super::*;

fn settings(text: &str) -> Settings {
    let mut s = Settings::new();
    if let Err(e) = parse_into(&mut s, "t.cfg", true, text) {
        panic!("unexpected error: {e}");
    }
    s
}

fn error(text: &str) -> String {
    let mut s = Settings::new();
    match parse_into(&mut s, "t.cfg", true, text) {
        Ok(_) => panic!("expected an error, got {s:?}"),
        Err(e) => e.to_string(),
    }
}

fn kind(s: &Settings, key: &str) -> ValueKind {
    match s.get(key) {
        Some(setting) => setting.value.kind.clone(),
        None => panic!("{key} not set in {s:?}"),
    }
}

fn str_v(line: usize, s: &str) -> Value {
    Value {
        line,
        kind: ValueKind::Str(s.to_string()),
    }
}

#[test]
fn strings_numbers_and_lines() {
    let s = settings("# comment\nname = \"g\"\n\nmemory=512 # MiB\n");
    assert_eq!(kind(&s, "name"), ValueKind::Str("g".into()));
    assert_eq!(kind(&s, "memory"), ValueKind::Num("512".into()));
    assert_eq!(s.get("memory").and_then(|x| x.at.line), Some(4));
    assert_eq!(
        s.get("name").map(|x| x.at.to_string()),
        Some("t.cfg:2".to_string())
    );
}

#[test]
fn semicolons_separate_statements_and_last_line_needs_no_newline() {
    let s = settings("name=\"h0\"; type=\"pvh\";vcpus=2");
    assert_eq!(kind(&s, "type"), ValueKind::Str("pvh".into()));
    assert_eq!(kind(&s, "vcpus"), ValueKind::Num("2".into()));
}

#[test]
fn lists_span_lines_with_trailing_commas_and_comments() {
    let s = settings("disk = [\n  'a', # first\n\n  'b',\n]\nx = []\ny = [ 1 ]");
    assert_eq!(
        kind(&s, "disk"),
        ValueKind::List(vec![str_v(2, "a"), str_v(4, "b")])
    );
    assert_eq!(kind(&s, "x"), ValueKind::List(vec![]));
    assert_eq!(
        kind(&s, "y"),
        ValueKind::List(vec![Value {
            line: 7,
            kind: ValueKind::Num("1".into())
        }])
    );
}

#[test]
fn nested_lists_parse() {
    let s = settings("v = [ ['a', 'b'], [] ]");
    assert_eq!(
        kind(&s, "v"),
        ValueKind::List(vec![
            Value {
                line: 1,
                kind: ValueKind::List(vec![str_v(1, "a"), str_v(1, "b")])
            },
            Value {
                line: 1,
                kind: ValueKind::List(vec![])
            },
        ])
    );
}

#[test]
fn the_last_setting_of_a_key_wins() {
    let s = settings("memory = 1\nmemory = 2\n");
    assert_eq!(kind(&s, "memory"), ValueKind::Num("2".into()));
    assert_eq!(s.get("memory").and_then(|x| x.at.line), Some(2));
}

#[test]
fn unnumbered_input_has_lineless_locations() {
    let mut s = Settings::new();
    assert!(parse_into(&mut s, "<command line>", false, "memory=5").is_ok());
    assert_eq!(
        s.get("memory").map(|x| x.at.to_string()),
        Some("<command line>".to_string())
    );
}

#[test]
fn syntax_errors_name_file_line_and_expectation() {
    assert_eq!(
        error("a = 1\nmemory 512\n"),
        "t.cfg:2: syntax error: expected `=` after `memory`, found number 512"
    );
    assert_eq!(
        error("name = guest\n"),
        "t.cfg:1: syntax error: expected a value for `name`, found `guest` (strings must be quoted: \"guest\")"
    );
    assert_eq!(
        error("\nname =\n'x'"),
        "t.cfg:2: syntax error: expected a value for `name` (a quoted string, a number or a [list]), found the end of the line"
    );
    assert_eq!(
        error("name = 'a' 'b'"),
        "t.cfg:1: syntax error: expected the end of the line or `;` after the value of `name`, found string \"b\""
    );
    assert_eq!(
        error("= 5"),
        "t.cfg:1: syntax error: expected a key name (like `memory`), found `=`"
    );
    assert_eq!(
        error("disk = [\n'a'\n'b']"),
        "t.cfg:3: syntax error: expected `,` or `]` in the list of `disk` (opened on line 1), found string \"b\""
    );
    assert_eq!(
        error("disk = [ 'a',\n"),
        "t.cfg:2: syntax error: the list of `disk` opened on line 1 is never closed with `]`"
    );
    assert_eq!(
        error("disk = [ , ]"),
        "t.cfg:1: syntax error: expected a value for `disk` (a quoted string, a number or a [list]), found `,`"
    );
    assert_eq!(
        error("x = 'a\n"),
        "t.cfg:1: syntax error: unterminated string: add the closing ' (a string must end on the line it starts on)"
    );
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let text = format!("x = {}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(error(&text).contains("nest more than 8 deep"));
}

#[test]
fn numbers_follow_strtol_base_zero() {
    assert_eq!(parse_number("512"), Ok(512));
    assert_eq!(parse_number("0"), Ok(0));
    assert_eq!(parse_number("0x200"), Ok(512));
    assert_eq!(parse_number("0X1f"), Ok(31));
    assert_eq!(parse_number("01000"), Ok(512));
    assert_eq!(parse_number("09"), Err(false));
    assert_eq!(parse_number("0x"), Err(false));
    assert_eq!(parse_number("512M"), Err(false));
    assert_eq!(parse_number("1_0"), Err(false));
    assert_eq!(parse_number("99999999999999999999999"), Err(true));
}
