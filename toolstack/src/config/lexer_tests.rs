//! Unit tests of the xl.cfg lexer.

use super::*;

fn toks(text: &str) -> Vec<Tok> {
    match tokenize(text) {
        Ok(tokens) => tokens.into_iter().map(|t| t.tok).collect(),
        Err(e) => panic!("unexpected lexical error: {e:?}"),
    }
}

fn lex_error(text: &str) -> LexError {
    match tokenize(text) {
        Ok(tokens) => panic!("expected an error, got {tokens:?}"),
        Err(e) => e,
    }
}

fn ident(s: &str) -> Tok {
    Tok::Ident(s.to_string())
}

fn string(s: &str) -> Tok {
    Tok::Str(s.to_string())
}

#[test]
fn assignment_with_both_quotes() {
    assert_eq!(
        toks("name = \"g1\"\nkernel='/k'"),
        vec![
            ident("name"),
            Tok::Equals,
            string("g1"),
            Tok::Newline,
            ident("kernel"),
            Tok::Equals,
            string("/k"),
            Tok::Eof
        ]
    );
}

#[test]
fn numbers_lists_and_punctuation() {
    assert_eq!(
        toks("a=[1,0x1F, 017 ];b=2"),
        vec![
            ident("a"),
            Tok::Equals,
            Tok::LBracket,
            Tok::Number("1".into()),
            Tok::Comma,
            Tok::Number("0x1F".into()),
            Tok::Comma,
            Tok::Number("017".into()),
            Tok::RBracket,
            Tok::Semi,
            ident("b"),
            Tok::Equals,
            Tok::Number("2".into()),
            Tok::Eof
        ]
    );
}

#[test]
fn comments_run_to_end_of_line_but_not_inside_strings() {
    assert_eq!(
        toks("# whole line\nx = 'a # b' # trailing\n"),
        vec![
            Tok::Newline,
            ident("x"),
            Tok::Equals,
            string("a # b"),
            Tok::Newline,
            Tok::Eof
        ]
    );
}

#[test]
fn line_numbers_count_newlines() {
    let tokens = tokenize("\n\n  a = 1\r\n\nb = 2").unwrap_or_default();
    let lines: Vec<(Tok, usize)> = tokens.into_iter().map(|t| (t.tok, t.line)).collect();
    assert_eq!(lines[2], (ident("a"), 3));
    assert_eq!(lines[7], (ident("b"), 5));
    assert_eq!(lines.last(), Some(&(Tok::Eof, 5)));
}

#[test]
fn escapes_as_xen_reads_them() {
    assert_eq!(
        toks(r#"x = "q\"s\'b\\t\tn\nh\x41o\101e\7""#)[2],
        string("q\"s'b\\t\tn\nhAoAe\u{7}")
    );
    assert_eq!(toks(r"x = 'it\'s'")[2], string("it's"));
    assert_eq!(toks(r#"x = 'say "hi"'"#)[2], string("say \"hi\""));
}

#[test]
fn a_leading_byte_order_mark_is_skipped() {
    assert_eq!(
        toks("\u{feff}x = 1"),
        vec![ident("x"), Tok::Equals, Tok::Number("1".into()), Tok::Eof]
    );
    assert!(tokenize("x = 1\n\u{feff}").is_err());
}

#[test]
fn non_ascii_in_strings_is_kept() {
    assert_eq!(toks("x = 'é→'")[2], string("é→"));
}

#[test]
fn unterminated_strings_are_errors_on_their_line() {
    let e = lex_error("a = 1\nname = 'abc\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("unterminated string"), "{}", e.message);
    assert_eq!(lex_error("name = \"abc").line, 1);
    assert_eq!(lex_error("name = \"abc\\").line, 1);
}

#[test]
fn bad_escapes_are_errors() {
    assert!(lex_error(r"x = '\q'")
        .message
        .contains("unknown escape `\\q`"));
    assert!(lex_error(r"x = '\xZ1'").message.contains("two hex digits"));
    assert!(lex_error(r"x = '\777'").message.contains("above"));
}

#[test]
fn unexpected_characters_are_errors() {
    let e = lex_error("a = 1\nmemory = -5\n");
    assert_eq!(e.line, 2);
    assert!(
        e.message.starts_with("unexpected character '-'"),
        "{}",
        e.message
    );
    assert!(e.message.contains("not Python"));
    let e = lex_error("x = @");
    assert_eq!(e.message, "unexpected character '@'");
}

#[test]
fn any_input_is_lexed_or_refused_without_panicking() {
    for text in [
        "\\", "'", "\"\\x", "'\\1", "\u{0}", "[[[[", "0x", "é = 1", "\r\r\n",
    ] {
        let _ = tokenize(text);
    }
}
