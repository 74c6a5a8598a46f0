//! `#[kernel_test]`: registers a test function to run inside a guest of each
//! kernel of a matrix. Use it as `bpfcompat::kernel_test`, with
//! `bpfcompat::main!()` in a `harness = false` test target.
//!
//! ```ignore
//! #[bpfcompat::kernel_test(kernels = ["debian-12-6.1"], expect_fail = ["debian-11-5.10"], timeout = "60s")]
//! fn ringbuf_loads() -> anyhow::Result<()> { /* load and attach with your own code */ Ok(()) }
//!
//! // A binary of the package, shipped into the guest (`bpfcompat::shipped`):
//! #[bpfcompat::kernel_test(bins = ["my-loader"])]
//! fn my_loader_runs() { /* ... */ }
//!
//! // The cause each kernel must fail with:
//! #[bpfcompat::kernel_test(expect_fail = { "debian-11-5.10" = "UNSUPPORTED_HELPER" })]
//! fn loop_loads() { /* ... */ }
//! ```

use proc_macro::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprArray, ExprLit, ItemFn, Lit, Meta, Token};

/// Options of the attribute.
#[derive(Default)]
struct Options {
    kernels: Option<Vec<String>>,
    matrix: Option<String>,
    /// Kernels where the test must fail, each with the code it must fail
    /// with (`None`: any cause the kernel's words name).
    expect_fail: Vec<(String, Option<String>)>,
    ignore: bool,
    timeout_secs: Option<u64>,
    /// Binaries of the package shipped into the guest for the test.
    bins: Vec<String>,
}

fn strings(e: &Expr) -> syn::Result<Vec<String>> {
    let Expr::Array(ExprArray { elems, .. }) = e else {
        return Err(syn::Error::new_spanned(
            e,
            "expected a list of strings, e.g. [\"debian-12-6.1\"]",
        ));
    };
    elems.iter().map(string).collect()
}

fn string(e: &Expr) -> syn::Result<String> {
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.value()),
        _ => Err(syn::Error::new_spanned(e, "expected a string")),
    }
}

/// A duration in humantime's syntax (`60s`, `2m`, `1h 30m`), as the CLI's
/// duration flags take it, or a number of seconds.
fn seconds(e: &Expr) -> syn::Result<u64> {
    let text = string(e)?;
    if let Ok(n) = text.parse::<u64>() {
        return Ok(n);
    }
    let d = humantime::parse_duration(&text).map_err(|err| {
        syn::Error::new_spanned(
            e,
            format!("{err}: expected a duration like \"60s\" or \"2m\""),
        )
    })?;
    if d.as_secs() == 0 {
        return Err(syn::Error::new_spanned(e, "a timeout of under one second"));
    }
    Ok(d.as_secs())
}

/// `expect_fail = { "kernel" = "CODE", ... }`: the braces' content.
fn expected_causes(content: ParseStream) -> syn::Result<Vec<(String, Option<String>)>> {
    let pairs = Punctuated::<ExpectPair, Token![,]>::parse_terminated(content)?;
    Ok(pairs
        .into_iter()
        .map(|p| (p.kernel.value(), Some(p.code.value())))
        .collect())
}

/// `"kernel" = "CODE"`.
struct ExpectPair {
    kernel: syn::LitStr,
    code: syn::LitStr,
}

impl Parse for ExpectPair {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let kernel = input.parse()?;
        input.parse::<Token![=]>()?;
        let code: syn::LitStr = input.parse()?;
        let v = code.value();
        if v.is_empty() || !v.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            return Err(syn::Error::new_spanned(
                &code,
                "expected a failure code, e.g. \"UNSUPPORTED_HELPER\" (docs/verdicts.md lists them)",
            ));
        }
        Ok(ExpectPair { kernel, code })
    }
}

impl Parse for Options {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut o = Options::default();
        // `expect_fail = { .. }` is no Rust expression: it is taken apart
        // here, the rest as `name = value` items.
        let mut rest = proc_macro2::TokenStream::new();
        while !input.is_empty() {
            if input.peek(syn::Ident) && input.peek2(Token![=]) && input.peek3(syn::token::Brace) {
                let name: syn::Ident = input.parse()?;
                if name != "expect_fail" {
                    return Err(syn::Error::new_spanned(
                        name,
                        "only expect_fail takes { .. }",
                    ));
                }
                input.parse::<Token![=]>()?;
                let content;
                syn::braced!(content in input);
                o.expect_fail = expected_causes(&content)?;
                if !input.is_empty() {
                    input.parse::<Token![,]>()?;
                }
                continue;
            }
            let tt: proc_macro2::TokenTree = input.parse()?;
            rest.extend([tt]);
        }
        let metas =
            syn::parse::Parser::parse2(Punctuated::<Meta, Token![,]>::parse_terminated, rest)?;
        for meta in metas {
            match &meta {
                Meta::Path(p) if p.is_ident("ignore") => o.ignore = true,
                Meta::NameValue(nv) if nv.path.is_ident("kernels") => {
                    o.kernels = Some(strings(&nv.value)?)
                }
                Meta::NameValue(nv) if nv.path.is_ident("expect_fail") => {
                    o.expect_fail = strings(&nv.value)?.into_iter().map(|k| (k, None)).collect()
                }
                Meta::NameValue(nv) if nv.path.is_ident("bins") => {
                    o.bins = strings(&nv.value)?;
                    if let Some(bad) = o
                        .bins
                        .iter()
                        .find(|b| b.is_empty() || b.contains('/') || b.starts_with('.'))
                    {
                        return Err(syn::Error::new_spanned(
                            &nv.value,
                            format!("`{bad}` is no binary name of this package"),
                        ));
                    }
                }
                Meta::NameValue(nv) if nv.path.is_ident("matrix") => {
                    o.matrix = Some(string(&nv.value)?)
                }
                Meta::NameValue(nv) if nv.path.is_ident("timeout") => {
                    o.timeout_secs = Some(seconds(&nv.value)?)
                }
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "unknown option; kernel_test takes kernels = [..], matrix = \"..\", expect_fail = [..] or { \"kernel\" = \"CODE\", .. }, bins = [..], ignore, timeout = \"60s\"",
                    ));
                }
            }
        }
        Ok(o)
    }
}

/// Registers a test to run inside a guest of each kernel (see the crate docs).
#[proc_macro_attribute]
pub fn kernel_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let opts = match syn::parse::<Options>(attr) {
        Ok(o) => o,
        Err(e) => return e.to_compile_error().into(),
    };
    let func = match syn::parse::<ItemFn>(item) {
        Ok(f) => f,
        Err(e) => return e.to_compile_error().into(),
    };
    if !func.sig.inputs.is_empty() || func.sig.asyncness.is_some() {
        return syn::Error::new_spanned(
            &func.sig,
            "a kernel_test takes no arguments and is not async",
        )
        .to_compile_error()
        .into();
    }
    let ident = &func.sig.ident;
    let name = ident.to_string();
    let kernels = match &opts.kernels {
        Some(k) => quote! { ::core::option::Option::Some(&[#(#k),*]) },
        None => quote! { ::core::option::Option::None },
    };
    let matrix = match &opts.matrix {
        Some(m) => quote! { ::core::option::Option::Some(#m) },
        None => quote! { ::core::option::Option::None },
    };
    let expect_fail = opts.expect_fail.iter().map(|(k, code)| match code {
        Some(c) => quote! { (#k, ::core::option::Option::Some(#c)) },
        None => quote! { (#k, ::core::option::Option::None) },
    });
    let ignore = opts.ignore;
    // Their paths on the host, as Cargo gives them to integration tests.
    let bins = opts.bins.iter().map(|b| {
        let var = format!("CARGO_BIN_EXE_{b}");
        quote! { (#b, ::core::env!(#var)) }
    });
    let timeout = opts.timeout_secs.unwrap_or(0);
    quote! {
        #func
        ::bpfcompat::__private::inventory::submit! {
            ::bpfcompat::harness::KernelTest {
                name: #name,
                run: || ::bpfcompat::harness::Outcome::from_return(#ident()),
                kernels: #kernels,
                matrix: #matrix,
                expect_fail: &[#(#expect_fail),*],
                ignore: #ignore,
                timeout_secs: #timeout,
                bins: &[#(#bins),*],
            }
        }
    }
    .into()
}
