//! Parses a target's module tree with syn: every non-test function with its
//! length, every printing macro, and the root's inner attributes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::visit::{self, Visit};
use syn::{Attribute, ImplItemFn, Item, ItemFn, ItemImpl, ItemMod, ItemTrait, Meta, TraitItemFn};

/// The macros library code must not call.
pub(crate) const PRINT_MACROS: [&str; 5] = ["println", "print", "eprintln", "eprint", "dbg"];

/// A function of the scanned code.
#[derive(Clone, Debug)]
pub(crate) struct Function {
    pub(crate) file: PathBuf,
    /// Its path within the file: enclosing inline modules, the impl's type
    /// (`<Type as Trait>` for a trait impl) or trait, enclosing functions.
    pub(crate) name: String,
    pub(crate) line: usize,
    /// From the line of `fn` (or `async`, `const`, `unsafe`) to the line of
    /// the closing brace, both included.
    pub(crate) lines: usize,
}

/// A call of one of [`PRINT_MACROS`].
#[derive(Clone, Debug)]
pub(crate) struct PrintCall {
    pub(crate) file: PathBuf,
    pub(crate) line: usize,
    pub(crate) name: String,
}

/// What a target's module tree holds.
#[derive(Debug, Default)]
pub(crate) struct TreeScan {
    pub(crate) functions: Vec<Function>,
    pub(crate) prints: Vec<PrintCall>,
    /// Whether the root file denies (or forbids) `missing_docs`.
    pub(crate) denies_missing_docs: bool,
    /// Files that could not be read or parsed, and `mod` declarations whose
    /// file was not found.
    pub(crate) errors: Vec<String>,
}

/// Scans the module tree that starts at `root` (a `lib.rs` or `main.rs`),
/// skipping `#[cfg(test)]` modules and items and `#[test]` functions.
pub(crate) fn scan_tree(root: &Path) -> TreeScan {
    let mut tree = TreeScan::default();
    let mut seen = BTreeSet::new();
    let mut queue = vec![(root.to_path_buf(), child_dir(root, true))];
    let mut first = true;
    while let Some((file, dir)) = queue.pop() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let parsed = std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|text| syn::parse_file(&text).map_err(|e| e.to_string()));
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(err) => {
                tree.errors.push(format!("{}: {err}", file.display()));
                continue;
            }
        };
        if first {
            tree.denies_missing_docs = parsed.attrs.iter().any(denies_missing_docs);
            first = false;
        }
        let mut scanner = Scanner {
            file: &file,
            dir,
            scope: Vec::new(),
            tree: &mut tree,
            children: Vec::new(),
        };
        scanner.visit_file(&parsed);
        queue.extend(scanner.children);
    }
    tree
}

/// The directory the `mod foo;` declarations of `file` look in.
fn child_dir(file: &Path, is_root: bool) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if is_root || stem == "mod" {
        parent
    } else {
        parent.join(stem)
    }
}

struct Scanner<'a> {
    file: &'a Path,
    /// Where this point's `mod foo;` files are (inline modules add to it).
    dir: PathBuf,
    scope: Vec<String>,
    tree: &'a mut TreeScan,
    /// Module files found, with the directory of their own children.
    children: Vec<(PathBuf, PathBuf)>,
}

impl Scanner<'_> {
    fn record(&mut self, name: &str, sig: &syn::Signature, block: &syn::Block) {
        let line = sig.fn_token.span.start().line;
        let start = first_line(sig).min(line);
        let end = block.brace_token.span.close().end().line;
        let mut path = self.scope.clone();
        path.push(name.to_owned());
        let mut name = path.join("::");
        // Two functions of one name in a file (in impls whose types differ
        // only in generic arguments, say) are told apart by their order.
        let same = |f: &&Function| f.file == self.file && f.name.split('#').next() == Some(&name);
        let before = self.tree.functions.iter().filter(same).count();
        if before > 0 {
            name = format!("{name}#{}", before + 1);
        }
        self.tree.functions.push(Function {
            file: self.file.to_path_buf(),
            name,
            line: start,
            lines: end + 1 - start,
        });
    }

    fn in_scope(&mut self, name: String, f: impl FnOnce(&mut Self)) {
        self.scope.push(name);
        f(self);
        self.scope.pop();
    }

    fn find_module(&mut self, module: &ItemMod) {
        let name = module.ident.to_string();
        let explicit = module.attrs.iter().find_map(path_attr);
        let candidates = match explicit {
            Some(path) => vec![self.file.parent().unwrap_or(Path::new(".")).join(path)],
            None => vec![
                self.dir.join(format!("{name}.rs")),
                self.dir.join(&name).join("mod.rs"),
            ],
        };
        match candidates.into_iter().find(|c| c.is_file()) {
            Some(file) => {
                let dir = child_dir(&file, false);
                self.children.push((file, dir));
            }
            None => self.tree.errors.push(format!(
                "{}: the file of `mod {name};` was not found",
                self.file.display()
            )),
        }
    }

    fn scan_tokens(&mut self, tokens: TokenStream) {
        let mut previous: Option<proc_macro2::Ident> = None;
        for token in tokens {
            match &token {
                TokenTree::Punct(p) if p.as_char() == '!' => {
                    if let Some(ident) = previous.take() {
                        self.print_call(&ident);
                    }
                }
                TokenTree::Group(group) => self.scan_tokens(group.stream()),
                _ => {}
            }
            previous = match token {
                TokenTree::Ident(ident) => Some(ident),
                _ => None,
            };
        }
    }

    fn print_call(&mut self, ident: &proc_macro2::Ident) {
        let name = ident.to_string();
        if PRINT_MACROS.contains(&name.as_str()) {
            self.tree.prints.push(PrintCall {
                file: self.file.to_path_buf(),
                line: ident.span().start().line,
                name,
            });
        }
    }
}

impl<'ast> Visit<'ast> for Scanner<'_> {
    fn visit_item(&mut self, item: &'ast Item) {
        if !is_test(item_attrs(item)) {
            visit::visit_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, module: &'ast ItemMod) {
        match &module.content {
            Some((_, items)) => {
                let name = module.ident.to_string();
                let outer = self.dir.clone();
                self.dir = outer.join(&name);
                self.in_scope(name, |s| items.iter().for_each(|item| s.visit_item(item)));
                self.dir = outer;
            }
            None => self.find_module(module),
        }
    }

    fn visit_item_fn(&mut self, item: &'ast ItemFn) {
        let name = item.sig.ident.to_string();
        self.record(&name, &item.sig, &item.block);
        self.in_scope(name, |s| visit::visit_item_fn(s, item));
    }

    fn visit_item_impl(&mut self, item: &'ast ItemImpl) {
        let ty = type_name(&item.self_ty);
        let name = match &item.trait_ {
            Some((_, path, _)) => format!("<{ty} as {}>", trait_name(path)),
            None => ty,
        };
        self.in_scope(name, |s| visit::visit_item_impl(s, item));
    }

    fn visit_impl_item_fn(&mut self, item: &'ast ImplItemFn) {
        if is_test(&item.attrs) {
            return;
        }
        let name = item.sig.ident.to_string();
        self.record(&name, &item.sig, &item.block);
        self.in_scope(name, |s| visit::visit_impl_item_fn(s, item));
    }

    fn visit_item_trait(&mut self, item: &'ast ItemTrait) {
        let name = item.ident.to_string();
        self.in_scope(name, |s| visit::visit_item_trait(s, item));
    }

    fn visit_trait_item_fn(&mut self, item: &'ast TraitItemFn) {
        if let Some(block) = &item.default {
            let name = item.sig.ident.to_string();
            self.record(&name, &item.sig, block);
            self.in_scope(name, |s| visit::visit_trait_item_fn(s, item));
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        if let Some(segment) = mac.path.segments.last() {
            self.print_call(&segment.ident);
        }
        // Calls inside another macro's input (`format!`, `macro_rules!`
        // bodies, `tokio::select!` arms) are tokens to syn, not syntax.
        self.scan_tokens(mac.tokens.clone());
    }
}

/// The first line of a signature: `const`, `async`, `unsafe`, `extern` or
/// `fn`, whichever comes first.
fn first_line(sig: &syn::Signature) -> usize {
    let mut line = sig.fn_token.span.start().line;
    let spans = [
        sig.constness.as_ref().map(|t| t.span),
        sig.asyncness.as_ref().map(|t| t.span),
        sig.unsafety.as_ref().map(|t| t.span),
        sig.abi.as_ref().map(|a| a.extern_token.span),
    ];
    for span in spans.into_iter().flatten() {
        line = line.min(span.start().line);
    }
    line
}

fn type_name(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(path) => last_segment(&path.path),
        syn::Type::Reference(reference) => type_name(&reference.elem),
        other => other.to_token_stream().to_string(),
    }
}

/// A trait's last segment with its generic arguments (`From<&Entry>`), so
/// two impls of one generic trait for a type have different names.
fn trait_name(path: &syn::Path) -> String {
    let Some(segment) = path.segments.last() else {
        return String::new();
    };
    let text = segment.to_token_stream().to_string();
    text.split_whitespace().collect()
}

fn last_segment(path: &syn::Path) -> String {
    path.segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default()
}

/// Whether the attributes make an item test-only: `#[cfg(test)]` (also
/// inside `all(..)`), or a test attribute (`#[test]`, `#[tokio::test]`).
pub(crate) fn is_test(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| {
        let path = attr.path();
        if path.is_ident("cfg") {
            attr.parse_args::<Meta>()
                .is_ok_and(|meta| is_test_cfg(&meta))
        } else {
            path.segments.last().is_some_and(|s| s.ident == "test")
        }
    })
}

fn is_test_cfg(meta: &Meta) -> bool {
    match meta {
        Meta::Path(path) => path.is_ident("test"),
        Meta::List(list) if list.path.is_ident("all") => list
            .parse_args_with(syn::punctuated::Punctuated::<Meta, syn::Token![,]>::parse_terminated)
            .is_ok_and(|metas| metas.iter().any(is_test_cfg)),
        _ => false,
    }
}

fn denies_missing_docs(attr: &Attribute) -> bool {
    if !matches!(attr.style, syn::AttrStyle::Inner(_)) {
        return false;
    }
    if !(attr.path().is_ident("deny") || attr.path().is_ident("forbid")) {
        return false;
    }
    let mut found = false;
    let _ = attr.parse_nested_meta(|meta| {
        found |= meta.path.is_ident("missing_docs");
        Ok(())
    });
    found
}

fn path_attr(attr: &Attribute) -> Option<String> {
    let Meta::NameValue(nv) = &attr.meta else {
        return None;
    };
    if !nv.path.is_ident("path") {
        return None;
    }
    match &nv.value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Some(s.value()),
        _ => None,
    }
}

fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(source: &str) -> TreeScan {
        let dir = tempdir();
        let root = dir.join("lib.rs");
        std::fs::write(&root, source).unwrap();
        let tree = scan_tree(&root);
        std::fs::remove_dir_all(&dir).unwrap();
        tree
    }

    fn tempdir() -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xtask-scan-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn lengths_run_from_fn_to_closing_brace() {
        let tree = scan("/// Doc.\n#[inline]\npub async fn a() {\n    let s = \"}\";\n}\n");
        assert_eq!(tree.functions.len(), 1);
        assert_eq!(tree.functions[0].name, "a");
        assert_eq!(tree.functions[0].line, 3);
        assert_eq!(tree.functions[0].lines, 3);
    }

    #[test]
    fn names_carry_impl_trait_and_nesting() {
        let tree = scan(
            "struct S;\nimpl S { fn m() { fn inner() {} } }\n\
             impl Clone for S { fn clone(&self) -> S { S } }\n\
             trait T { fn d() {} fn r(); }\nmod inline { fn f() {} }\n",
        );
        let names: Vec<_> = tree.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "S::m",
                "S::m::inner",
                "<S as Clone>::clone",
                "T::d",
                "inline::f"
            ]
        );
    }

    #[test]
    fn test_code_is_skipped() {
        let tree = scan(
            "#[cfg(test)]\nmod tests { fn long() { println!(); } }\n\
             #[test]\nfn t() { dbg!(1); }\n\
             #[cfg(all(test, feature = \"x\"))]\nfn u() {}\n\
             #[cfg(any(test, feature = \"x\"))]\nfn kept() {}\n",
        );
        let names: Vec<_> = tree.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["kept"]);
        assert!(tree.prints.is_empty());
    }

    #[test]
    fn prints_are_found_inside_other_macros() {
        let tree = scan(
            "fn f() {\n    println!(\"a\");\n    let _ = format!(\"{}\", dbg!(1));\n}\n\
             macro_rules! m { () => { eprintln!() }; }\n",
        );
        let found: Vec<_> = tree
            .prints
            .iter()
            .map(|p| (p.name.as_str(), p.line))
            .collect();
        assert_eq!(found, [("println", 2), ("dbg", 3), ("eprintln", 5)]);
    }

    #[test]
    fn missing_docs_is_read_from_the_root() {
        assert!(scan("#![deny(missing_docs)]\n").denies_missing_docs);
        assert!(scan("#![deny(unsafe_code, missing_docs)]\n").denies_missing_docs);
        assert!(scan("#![forbid(missing_docs)]\n").denies_missing_docs);
        assert!(!scan("#![warn(missing_docs)]\n").denies_missing_docs);
    }

    #[test]
    fn a_missing_module_file_is_an_error() {
        let tree = scan("mod gone;\n");
        assert_eq!(tree.errors.len(), 1);
    }
}
