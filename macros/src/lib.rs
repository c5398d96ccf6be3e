//! Attribute macros for the [`percore`](https://docs.rs/percore) runtime:
//! `#[percore::main]` and `#[percore::test]`.
//!
//! Both turn an `async fn` into an ordinary synchronous function that starts a
//! percore runtime and drives the original body to completion on it. Use them
//! through the `percore` crate (`percore::main`, `percore::test`), never by
//! depending on this crate directly: the generated code names `::percore`, so
//! it only resolves in crates that depend on `percore` under that name.
//!
//! ```rust,ignore
//! #[percore::main]
//! async fn main() {
//!     println!("hello from core 0");
//! }
//! ```
//!
//! (runs as a doctest in the `percore` crate)
//!
//! # Attribute arguments
//!
//! Both macros accept these optional keys, in any order:
//!
//! - `cores = N` — the number of cores (one thread each) the runtime starts
//!   with; `N` must be an integer literal of at least 1. The body runs on
//!   core 0. Without it (or with `cores = 1`) the runtime runs on the calling
//!   thread alone.
//! - `start_paused = true` — every core's clock starts paused: time moves
//!   only by `percore::time::advance` and by jumping to the next timer when
//!   the core is idle (`Builder::start_paused`).
//! - `seed = N` — the seed that shuffles the order ready tasks are polled in
//!   (`Builder::seed`); `N` is an integer literal (a `u64`).
//!
//! A test always runs seeded: with `seed = N`, else with `PERCORE_SEED`, else
//! with a random seed; if it fails (panics or returns `Err`) it prints
//! `PERCORE_SEED=<n>` on stderr, and running it again with that variable
//! replays the same task order.
//!
//! # What a failure to start the runtime does
//!
//! Starting the runtime can fail at run time (io_uring unavailable, a runtime
//! already running on this thread, …). `#[percore::main]` then prints
//! `percore: could not start the runtime: <reason>` to stderr and exits with
//! status 1; `#[percore::test]` panics with the same message, so the test
//! fails and shows why.

#![warn(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

use proc_macro::TokenStream;
use proc_macro2::{Literal, Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, Lit, Meta, Token};

/// Runs an `async fn main` on a percore runtime.
///
/// The function must be `async` and take no arguments; it may have any
/// return type a `main` may have, such as `()` or `Result<(), E>`, and the
/// generated `fn main` returns the same type.
///
/// ```rust,ignore
/// #[percore::main]
/// async fn main() -> std::io::Result<()> {
///     // The body runs on the calling thread's single-core runtime.
///     Ok(())
/// }
/// ```
///
/// ```rust,ignore
/// // Start four cores; the body runs on core 0.
/// #[percore::main(cores = 4)]
/// async fn main() {
///     println!("running on core 0 of 4");
/// }
/// ```
///
/// (both run as doctests in the `percore` crate)
///
/// If the runtime cannot start, the program prints
/// `percore: could not start the runtime: <reason>` to stderr and exits with
/// status 1. That is done the same way whatever the return type, because a
/// `main` generally has no caller that could receive an `io::Error`.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Main, attr.into(), item.into()).into()
}

/// Runs an `async fn` test on a percore runtime.
///
/// The function must be `async` and take no arguments; it may return `()` or
/// a `Result`, as an ordinary `#[test]` may. The macro adds `#[test]` itself,
/// so do not write one; other attributes such as `#[ignore]`,
/// `#[should_panic]` and doc comments are kept.
///
/// ```rust,ignore
/// #[percore::test]
/// async fn reads_config() -> std::io::Result<()> {
///     let text = std::fs::read_to_string("Cargo.toml")?;
///     assert!(text.contains("[package]"));
///     Ok(())
/// }
///
/// #[percore::test(cores = 2)]
/// async fn on_two_cores() {
///     // The body runs on core 0 of a two-core runtime.
/// }
/// ```
///
/// (runs as a doctest in the `percore` crate)
///
/// If the runtime cannot start, the test panics with
/// `percore: could not start the runtime: <reason>`.
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Test, attr.into(), item.into()).into()
}

/// Which attribute is being expanded; they differ only in validation wording
/// and in what happens when the runtime cannot start.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn attr_name(self) -> &'static str {
        match self {
            Kind::Main => "#[percore::main]",
            Kind::Test => "#[percore::test]",
        }
    }
}

/// The parsed attribute arguments.
#[derive(Default)]
struct Args {
    /// `None` means "not given"; it and `cores = 1` both select
    /// `percore::run`, which needs no extra threads.
    cores: Option<(usize, Span)>,
    /// `start_paused = true`: every core's clock starts paused.
    start_paused: bool,
    /// `seed = N`: the poll-order seed, instead of `PERCORE_SEED` or a random one.
    seed: Option<u64>,
}

fn expand(kind: Kind, attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        // Not a function at all: syn's message ("expected `fn`") already
        // points at the offending token. Re-emit the item so the rest of the
        // crate still resolves it and the user sees only this error.
        Err(err) => return with_item(err, item),
    };
    if let Err(mut err) = validate(kind, &func) {
        // Report a bad argument list too, so one build shows every mistake.
        if let Err(args_err) = parse_args(kind, attr) {
            err.combine(args_err);
        }
        return with_item(err, item);
    }
    match parse_args(kind, attr) {
        Ok(args) => generate(kind, &args, func),
        // The function itself is fine: expand it as if no arguments had been
        // given, so the only error is the one about the arguments (re-emitting
        // the `async fn` instead would add rustc's "`main` is not allowed to
        // be `async`") and the body is still type-checked.
        Err(err) => {
            let mut tokens = err.to_compile_error();
            tokens.extend(generate(kind, &Args::default(), func));
            tokens
        }
    }
}

/// Emits the error next to the untouched item, as tokio's macros do, so that
/// the item's name keeps resolving and the compile error is not buried under
/// "cannot find function" or "`main` function not found" errors.
fn with_item(err: syn::Error, item: TokenStream2) -> TokenStream2 {
    let mut tokens = err.to_compile_error();
    tokens.extend(item);
    tokens
}

fn parse_args(kind: Kind, attr: TokenStream2) -> syn::Result<Args> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
    let mut args = Args::default();
    let mut seen = Vec::new();
    for meta in metas {
        let path = meta.path();
        let name = path.to_token_stream().to_string().replace(' ', "");
        if !matches!(name.as_str(), "cores" | "start_paused" | "seed") {
            return Err(syn::Error::new_spanned(
                path,
                format!(
                    "unknown {} argument `{name}`; the allowed keys are `cores` \
                     (e.g. `cores = 4`), `start_paused` (`start_paused = true`) and \
                     `seed` (e.g. `seed = 42`)",
                    kind.attr_name()
                ),
            ));
        }
        let value = match &meta {
            Meta::NameValue(nv) => &nv.value,
            _ => {
                return Err(syn::Error::new_spanned(
                    &meta,
                    format!("expected `{name} = {}`", example_value(&name)),
                ))
            }
        };
        if seen.contains(&name) {
            return Err(syn::Error::new_spanned(
                &meta,
                format!("`{name}` is given more than once"),
            ));
        }
        match name.as_str() {
            "cores" => args.cores = Some((parse_cores(value)?, value.span())),
            "start_paused" => args.start_paused = parse_bool(value)?,
            _ => args.seed = Some(parse_seed(value)?),
        }
        seen.push(name);
    }
    Ok(args)
}

fn example_value(name: &str) -> &'static str {
    match name {
        "cores" => "N`, where N is an integer literal of at least 1",
        "start_paused" => "true",
        _ => "N`, where N is an integer literal (a u64)",
    }
}

fn parse_bool(value: &Expr) -> syn::Result<bool> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Bool(lit),
            ..
        }) => Ok(lit.value),
        _ => Err(syn::Error::new_spanned(
            value,
            "`start_paused` must be `true` or `false`",
        )),
    }
}

fn parse_seed(value: &Expr) -> syn::Result<u64> {
    let bad = || {
        syn::Error::new_spanned(
            value,
            "`seed` must be an integer literal from 0 to u64::MAX, e.g. `seed = 42`",
        )
    };
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(lit), ..
        }) if matches!(lit.suffix(), "" | "u64") => lit.base10_parse().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

fn parse_cores(value: &Expr) -> syn::Result<usize> {
    let not_integer = || {
        syn::Error::new_spanned(
            value,
            "`cores` must be an integer literal of at least 1, e.g. `cores = 4`",
        )
    };
    let lit = match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(lit), ..
        }) => lit,
        _ => return Err(not_integer()),
    };
    // The literal is re-emitted unsuffixed as a `usize`, so a suffix other
    // than `usize` would silently change the user's type; reject it instead.
    if !matches!(lit.suffix(), "" | "usize") {
        return Err(not_integer());
    }
    // syn reads `-1` as an integer literal too; it (and anything too large
    // for a `usize`) gets the same message rather than "invalid digit".
    let cores: usize = lit.base10_parse().map_err(|_| not_integer())?;
    if cores == 0 {
        return Err(syn::Error::new_spanned(
            lit,
            "`cores` must be at least 1: a runtime needs a core to run on",
        ));
    }
    Ok(cores)
}

fn validate(kind: Kind, func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            sig.fn_token,
            format!("{} can only be used on an `async fn`", kind.attr_name()),
        ));
    }
    if !sig.inputs.is_empty() || sig.variadic.is_some() {
        let what = match kind {
            Kind::Main => "the `main` function",
            Kind::Test => "a `#[percore::test]` function",
        };
        return Err(syn::Error::new_spanned(
            &sig.inputs,
            format!("{what} cannot take arguments"),
        ));
    }
    // Neither `main` nor a `#[test]` can be generic; saying so here points at
    // the generics instead of at code the user never wrote.
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            format!("{} functions cannot be generic", kind.attr_name()),
        ));
    }
    if kind == Kind::Test {
        // A second `#[test]` would register the function twice (and the
        // original one is async, which libtest rejects).
        if let Some(attr) = func.attrs.iter().find(|a| a.path().is_ident("test")) {
            return Err(syn::Error::new_spanned(
                attr,
                "remove this `#[test]`: #[percore::test] already adds one",
            ));
        }
    }
    Ok(())
}

fn generate(kind: Kind, args: &Args, func: ItemFn) -> TokenStream2 {
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = func;
    sig.asyncness = None;

    // The user's body keeps its own spans, and the wrapper around it
    // (`async move`, the closure) takes the span of the whole block, so type
    // errors and `Send`/`'static` errors point at user code rather than at
    // the attribute.
    let body_span = block.brace_token.span.join();
    let output_span = match &sig.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => sig.ident.span(),
    };

    // What to do with an `io::Error` from starting the runtime. Both arms
    // diverge, so the surrounding `match` has the function's return type.
    let on_error = match kind {
        Kind::Main => quote! {
            {
                ::std::eprintln!("percore: could not start the runtime: {}", err);
                ::std::process::exit(1)
            }
        },
        Kind::Test => quote! {
            ::std::panic!("percore: could not start the runtime: {}", err)
        },
    };

    // A test always runs seeded, so a failure can be replayed: `seed = N`,
    // else `PERCORE_SEED`, else a random seed; it prints the seed if it fails.
    let (seed_setup, seed) = match (kind, args.seed) {
        (Kind::Test, fixed) => {
            let fixed = match fixed {
                Some(seed) => quote!(::std::option::Option::Some(#seed)),
                None => quote!(::std::option::Option::None),
            };
            (
                quote! {
                    let __percore_seed = ::percore::__private::test_seed(#fixed);
                    let __percore_report = ::percore::__private::SeedReport::new(__percore_seed);
                },
                quote!(.seed(__percore_seed)),
            )
        }
        (Kind::Main, Some(seed)) => (quote!(), quote!(.seed(#seed))),
        (Kind::Main, None) => (quote!(), quote!()),
    };
    let paused = if args.start_paused {
        quote!(.start_paused(true))
    } else {
        quote!()
    };
    let builder = quote!(::percore::Builder::new() #seed #paused);

    let run = match args.cores {
        Some((cores, span)) if cores > 1 => {
            let cores = Literal::usize_unsuffixed(cores);
            let cores = quote_spanned!(span=> #cores);
            let task = quote_spanned!(body_span=> move || async move #block);
            // `run_on` hands the output back from core 0's thread, so it must
            // be `Send`; the usual way to miss that is a return type like
            // `Result<(), Box<dyn Error>>`. The call carries the return type's
            // span so rustc's "cannot be sent between threads safely" points
            // at that type instead of at the attribute. (The closure captures
            // nothing, as the fn has no arguments, so the other bounds of
            // `run_on` cannot fail in a way this span would misattribute.)
            let run_on = quote_spanned!(output_span=> run_on);
            quote! {
                let runtime = match #builder.cores(#cores).build() {
                    ::std::result::Result::Ok(runtime) => runtime,
                    ::std::result::Result::Err(err) => #on_error,
                };
                // The body runs on core 0; the other cores start with it
                // and are shut down when `runtime` drops after the body ends.
                match runtime.#run_on(0, #task) {
                    ::std::result::Result::Ok(output) => output,
                    ::std::result::Result::Err(err) => #on_error,
                }
            }
        }
        _ => {
            let task = quote_spanned!(body_span=> async move #block);
            let start = if kind == Kind::Main && args.seed.is_none() && !args.start_paused {
                quote!(::percore::run(#task))
            } else {
                quote!(#builder.block_on(#task))
            };
            quote! {
                match #start {
                    ::std::result::Result::Ok(output) => output,
                    ::std::result::Result::Err(err) => #on_error,
                }
            }
        }
    };

    // The binding carries the return type, so a `?` in the body still infers
    // its error type from it.
    let output_type = match &sig.output {
        syn::ReturnType::Type(_, ty) => quote!(#ty),
        syn::ReturnType::Default => quote!(()),
    };
    let body = match kind {
        Kind::Test => quote! {
            #seed_setup
            let __percore_outcome: #output_type = { #run };
            __percore_report.check(&__percore_outcome);
            __percore_outcome
        },
        Kind::Main => run,
    };

    // `::core::prelude::v1::test` rather than a bare `test`, so a user's own
    // `test` macro in scope cannot shadow the real one.
    let test_attr = match kind {
        Kind::Main => quote!(),
        Kind::Test => quote!(#[::core::prelude::v1::test]),
    };

    quote! {
        #test_attr
        #(#attrs)*
        #vis #sig {
            #body
        }
    }
}

#[cfg(test)]
mod tests {
    // Not `use super::*`: that would import this crate's own `test` macro and
    // make `#[test]` below ambiguous.
    use super::{expand, Kind};

    fn expand_str(kind: Kind, attr: &str, item: &str) -> String {
        expand(kind, attr.parse().unwrap(), item.parse().unwrap()).to_string()
    }

    fn error_of(kind: Kind, attr: &str, item: &str) -> String {
        let out = expand_str(kind, attr, item);
        assert!(
            out.contains("compile_error"),
            "expected an error, got: {out}"
        );
        out
    }

    #[test]
    fn main_single_core_uses_run() {
        let out = expand_str(Kind::Main, "", "async fn main() { work().await }");
        assert!(out.contains(":: percore :: run"), "{out}");
        assert!(!out.contains("async fn"), "{out}");
        assert!(out.contains(":: std :: process :: exit (1)"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn cores_one_is_single_core() {
        let out = expand_str(Kind::Main, "cores = 1", "async fn main() {}");
        assert!(out.contains(":: percore :: run"), "{out}");
        assert!(!out.contains("builder"), "{out}");
    }

    #[test]
    fn test_with_cores_uses_builder_and_keeps_attrs() {
        let out = expand_str(
            Kind::Test,
            "cores = 2",
            "/// doc\n#[ignore] async fn t() -> Result<(), E> { Ok(()) }",
        );
        assert!(
            out.contains("# [:: core :: prelude :: v1 :: test]"),
            "{out}"
        );
        assert!(out.contains("# [ignore]"), "{out}");
        assert!(out.contains(". cores (2) . build ()"), "{out}");
        assert!(out.contains("run_on (0 , move || async move"), "{out}");
        assert!(out.contains("fn t () -> Result < () , E >"), "{out}");
        assert!(out.contains(":: std :: panic !"), "{out}");
    }

    #[test]
    fn errors() {
        assert!(error_of(Kind::Main, "", "fn main() {}").contains("async fn"));
        assert!(error_of(Kind::Main, "", "async fn main(x: u8) {}").contains("arguments"));
        assert!(error_of(Kind::Test, "", "async fn t(x: u8) {}").contains("arguments"));
        assert!(error_of(Kind::Test, "", "async fn t<T>() {}").contains("generic"));
        assert!(error_of(Kind::Main, "threads = 2", "async fn main() {}").contains("`threads`"));
        assert!(error_of(Kind::Main, "cores = 0", "async fn main() {}").contains("at least 1"));
        assert!(error_of(Kind::Main, "cores = \"2\"", "async fn main() {}").contains("integer"));
        assert!(error_of(Kind::Main, "cores = 2u8", "async fn main() {}").contains("integer"));
        assert!(error_of(Kind::Main, "cores = N", "async fn main() {}").contains("integer"));
        assert!(error_of(Kind::Main, "cores = -1", "async fn main() {}").contains("integer"));
        assert!(error_of(Kind::Main, "cores = 1.5", "async fn main() {}").contains("integer"));
        // A bad argument still expands the fn (no leftover `async fn main`).
        let out = error_of(Kind::Main, "cores = 0", "async fn main() {}");
        assert!(
            out.contains(":: percore :: run") && !out.contains("async fn"),
            "{out}"
        );
        assert!(error_of(Kind::Main, "cores", "async fn main() {}").contains("cores = N"));
        assert!(
            error_of(Kind::Main, "cores = 2, cores = 3", "async fn main() {}")
                .contains("more than once")
        );
        assert!(error_of(Kind::Test, "", "#[test] async fn t() {}").contains("remove"));
        assert!(error_of(Kind::Main, "", "struct S;").contains("expected"));
    }

    #[test]
    fn usize_suffix_is_accepted() {
        let out = expand_str(Kind::Main, "cores = 3usize", "async fn main() {}");
        assert!(out.contains(". cores (3)"), "{out}");
    }
}
