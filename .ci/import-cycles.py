#!/usr/bin/env python3
"""Fails if a crate's files import each other in a cycle.

Reads every `use` tree and every `crate::`, `super::` or `self::` path in
each file of each crate named on the command line (test modules and
comments left out), maps each to the file of the module it names, and
lists every strongly connected set of more than one file. A cycle means
two files cannot be read apart; the fix is a third file both use.
"""
import os, re, sys
def files_of(src):
    out={}
    for root,_,fs in os.walk(src):
        for f in fs:
            if f.endswith('.rs'):
                p=os.path.join(root,f)
                rel=os.path.relpath(p,src)[:-3].split(os.sep)
                if rel[-1] in ('mod','lib','main'): rel=rel[:-1]
                out[tuple(rel)]=p
    return out
def split_top(s):
    parts=[];depth=0;cur=''
    for ch in s:
        if ch=='{': depth+=1
        if ch=='}': depth-=1
        if ch==',' and depth==0: parts.append(cur); cur=''
        else: cur+=ch
    if cur.strip(): parts.append(cur)
    return [p.strip() for p in parts if p.strip()]
def expand(tree):
    tree=tree.strip()
    m=re.match(r'^(.*?)::\{(.*)\}$', tree, re.S)
    if m:
        prefix=m.group(1)
        out=[]
        for part in split_top(m.group(2)):
            for e in expand(part):
                out.append(prefix if e=='self' else prefix+'::'+e)
        return out
    if tree.startswith('{') and tree.endswith('}'):
        out=[]
        for part in split_top(tree[1:-1]): out+=expand(part)
        return out
    return [re.sub(r'\s+as\s+\w+$','',tree)]
def strip(text):
    text=re.sub(r'#\[cfg\(test\)\]\s*mod tests\s*\{.*', '', text, flags=re.S)
    return '\n'.join(l for l in text.split('\n') if not l.strip().startswith('//'))
def refs(text):
    text=strip(text)
    out=[]
    for m in re.finditer(r'\buse\s+([^;]*);', text, re.S):
        out+=expand(re.sub(r'\s+',' ',m.group(1)))
    body=re.sub(r'\buse\s+[^;]*;','',text,flags=re.S)
    out+=[m.group(0) for m in re.finditer(r'\b(crate|super|self)(::\w+)+', body)]
    return out
def resolve(mods, path):
    for n in range(len(path),0,-1):
        if tuple(path[:n]) in mods: return tuple(path[:n])
    return None
def analyze(src):
    mods=files_of(src); g={m:set() for m in mods}
    for m,p in mods.items():
        is_dir=os.path.basename(p) in ('mod.rs','lib.rs','main.rs')
        here=list(m) if is_dir else list(m)   # module path of this file
        text=open(p).read()
        children=[k[-1] for k in mods if len(k)==len(here)+1 and list(k[:-1])==here] if is_dir else []
        rs=refs(text)
        for child in children:
            if re.search(r'(?<![\w:])'+child+r'::', strip(text)):
                rs.append('self::'+child)
        for r in rs:
            parts=r.split('::')
            if parts[0]=='crate': path=parts[1:]
            elif parts[0] in ('super','self'):
                cur=list(here)
                while parts and parts[0] in ('super','self'):
                    if parts[0]=='super': cur=cur[:-1]
                    parts=parts[1:]
                path=cur+parts
            else: continue
            t=resolve(mods,path)
            if t and t!=m: g[m].add(t)
    idx={};low={};st=[];on=set();res=[];c=[0]
    def sc(v):
        idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
        for w in g[v]:
            if w not in idx: sc(w);low[v]=min(low[v],low[w])
            elif w in on: low[v]=min(low[v],idx[w])
        if low[v]==idx[v]:
            comp=[]
            while True:
                w=st.pop();on.discard(w);comp.append(w)
                if w==v: break
            if len(comp)>1: res.append(comp)
    for v in g:
        if v not in idx: sc(v)
    return res
found = False
for crate in sys.argv[1:]:
    for comp in analyze(os.path.join(crate, 'src')):
        found = True
        names = sorted('/'.join(x) or 'lib' for x in comp)
        print(f"error: {crate}: files import each other in a cycle: {', '.join(names)}")
sys.exit(1 if found else 0)
