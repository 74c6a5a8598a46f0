//! `#[kernel_test]`: registers a test function to run inside a guest of each
//! kernel of a matrix. Use it as `bpfcompat::kernel_test`, with
//! `bpfcompat::main!()` in a `harness = false` test target.
//!
//! ```ignore
//! #[bpfcompat::kernel_test(kernels = ["debian-12-6.1"], expect_fail = ["debian-11-5.10"], timeout = "60s")]
//! fn ringbuf_loads() -> anyhow::Result<()> { /* load and attach with your own code */ Ok(()) }
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
    expect_fail: Vec<String>,
    ignore: bool,
    timeout_secs: Option<u64>,
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

impl Parse for Options {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut o = Options::default();
        for meta in Punctuated::<Meta, Token![,]>::parse_terminated(input)? {
            match &meta {
                Meta::Path(p) if p.is_ident("ignore") => o.ignore = true,
                Meta::NameValue(nv) if nv.path.is_ident("kernels") => {
                    o.kernels = Some(strings(&nv.value)?)
                }
                Meta::NameValue(nv) if nv.path.is_ident("expect_fail") => {
                    o.expect_fail = strings(&nv.value)?
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
                        "unknown option; kernel_test takes kernels = [..], matrix = \"..\", expect_fail = [..], ignore, timeout = \"60s\"",
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
    let expect_fail = &opts.expect_fail;
    let ignore = opts.ignore;
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
            }
        }
    }
    .into()
}
