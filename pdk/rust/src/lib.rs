//! # pirn-pdk: write pirn knots in Rust
//!
//! A knot module is a WebAssembly module the pirn host runs through a small
//! CBOR ABI (docs/abi.md in the pirn repository). This crate implements the
//! guest side of that ABI with no dependencies: a CBOR codec for the ABI's
//! data model ([`Value`], [`encode`](cbor::encode), [`decode`](cbor::decode)),
//! the request, response and manifest messages, typed conversions, logging,
//! and the [`knots!`] macro, which turns plain Rust functions into knots and
//! wires up the module's exports:
//!
//! ```
//! use pirn_pdk::prelude::*;
//!
//! pirn_pdk::knots! {
//!     name = "example";
//!
//!     /// Returns 2·x.
//!     fn double(
//!         /// the operand
//!         x: i64,
//!     ) -> i64 {
//!         2 * x
//!     }
//!
//!     /// Returns the mean of xs.
//!     fn mean(xs: Vec<f64>) -> Result<f64> {
//!         if xs.is_empty() {
//!             return Err(fail("ValueError", "mean of an empty list"));
//!         }
//!         Ok(xs.iter().sum::<f64>() / xs.len() as f64)
//!     }
//! }
//!
//! // The functions stay ordinary functions...
//! assert_eq!(double(21), 42);
//! // ...and the module can be exercised natively, as the host would.
//! assert_eq!(PIRN_MODULE.call("double", [("x", 4i64)]), Response::Ok(Value::Int(8)));
//! ```
//!
//! ## Declaring knots
//!
//! Inside `knots!`, each knot is a function:
//!
//! - its name is the knot's name, its doc comment (joined into one line) the
//!   knot's `doc`;
//! - each parameter is an input of that name; a doc comment on a parameter
//!   becomes the input's `doc`; its type gives the input's ABI type (see
//!   [`convert`] for the table: `i64` is `int`, `Vec<f64>` `list[float]`,
//!   `BTreeMap<String, f64>` `dict[float]`, `Option<String>`
//!   `optional[str]`, [`Value`] `any`...). An `Option<T>` input is optional:
//!   it may be left unbound and is then `None`;
//! - a last parameter written `..name: BTreeMap<String, T>` collects every
//!   further input (the manifest's `rest`, of type `T`);
//! - it returns `T` (always ok) or [`Result<T>`] = `Result<T, Stop>`,
//!   where [`Stop`] is an err ([`fail`], [`Error`]) or a skip ([`skip`],
//!   [`Skip`]); the output type is `T`'s.
//!
//! Parameters must be plain identifiers (no `mut`: rebind inside the body)
//! and only doc comments may be attached to knots and parameters. The macro
//! emits each function as a `pub fn`, a static `PIRN_MODULE: Module`, and,
//! on `wasm32`, the exports `pirn_abi_version`, `pirn_manifest` and
//! `pirn_invoke`; use it once per crate.
//!
//! ## Outcomes
//!
//! - Inputs are bound before the function runs: a missing required input,
//!   an undeclared one, or a value that does not convert to the parameter's
//!   type is an err of type `InputError` naming the input (docs/abi.md
//!   §2.3: `TypeError` is reserved for the host's own check). The host
//!   checks and coerces inputs against the manifest first, so a knot sees
//!   a conversion failure only when a pipeline turns `validate_io` off.
//! - A request naming an unknown knot is an err of type `UnknownKnot`; a
//!   malformed request one of type `PDKError`.
//! - A panic cannot be caught (wasm has no unwinding here: build with
//!   `panic = "abort"`). The PDK logs the panic message at level error,
//!   naming the knot, and the module then traps: the host reports an err
//!   of type `Trap` and discards the instance. Return [`fail`] instead of
//!   panicking for errors you expect.
//!
//! ## Logging
//!
//! [`log`] (and the macros [`debug!`], [`info!`], [`warn!`], [`error!`])
//! send a line to the host's structured log. On `wasm32-wasi`, standard
//! output and error are captured too, line by line.

#![warn(missing_docs)]

pub mod abi;
pub mod cbor;
pub mod convert;
mod host;
mod knot;

pub use crate::abi::{fail, skip, Error, InputSpec, KnotSpec, Manifest, Request, Response, Skip, Stop, ABI_VERSION};
pub use crate::cbor::{DecodeError, Value};
#[allow(deprecated)]
pub use crate::convert::TypeError;
pub use crate::convert::{AbiType, Bytes, ConvertError, FromValue, IntoValue, RestInputs};
#[cfg(not(target_arch = "wasm32"))]
pub use crate::host::take_logs;
pub use crate::host::{log, Level};
pub use crate::knot::{rest_type, Args, InputDef, KnotDef, KnotReturn, Module};

#[doc(hidden)]
pub use crate::host::rt as __rt;

/// The result of a knot that can fail or skip.
pub type Result<T, E = Stop> = std::result::Result<T, E>;

/// What a knot crate usually needs: `use pirn_pdk::prelude::*;`.
pub mod prelude {
    pub use crate::{fail, skip, Bytes, Error, Level, Response, Result, Skip, Stop, Value};
    pub use std::collections::BTreeMap;
}

/// Logs a formatted line at level debug.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log($crate::Level::Debug, &::std::format!($($arg)*)) };
}

/// Logs a formatted line at level info.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log($crate::Level::Info, &::std::format!($($arg)*)) };
}

/// Logs a formatted line at level warn.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log($crate::Level::Warn, &::std::format!($($arg)*)) };
}

/// Logs a formatted line at level error.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log($crate::Level::Error, &::std::format!($($arg)*)) };
}

/// Declares a module's knots; see the [crate documentation](crate).
///
/// ```ignore
/// pirn_pdk::knots! {
///     name = "stats";                       // optional: the manifest's module name
///
///     /// Doc line of the knot.
///     fn knot_name(
///         /// doc of the input
///         input: Type,
///         other: Option<Type>,              // optional input
///         ..rest: BTreeMap<String, Type>,   // optional: any further inputs
///     ) -> OutputType /* or Result<OutputType> */ {
///         ...
///     }
/// }
/// ```
#[macro_export]
macro_rules! knots {
    (name = $modname:literal; $($items:tt)*) => {
        $crate::__pirn_knots! { @munch [::core::option::Option::Some($modname)] [] $($items)* }
    };
    ($($items:tt)*) => {
        $crate::__pirn_knots! { @munch [::core::option::Option::None] [] $($items)* }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __pirn_knots {
    (@munch [$($modname:tt)*] [$($defs:tt)*]
        $(#[doc = $doc:literal])*
        fn $name:ident ( $($params:tt)* ) -> $ret:ty $body:block
        $($more:tt)*
    ) => {
        $crate::__pirn_knot_fn! { [$($doc)*] $name ($($params)*) $ret $body }
        $crate::__pirn_knots! {
            @munch [$($modname)*] [$($defs)* ($name [$($doc)*] ($($params)*) $ret)] $($more)*
        }
    };
    (@munch [$($modname:tt)*] [$( ($name:ident [$($doc:literal)*] ($($params:tt)*) $ret:ty) )*]) => {
        /// The module's knots, as its exports serve them; call
        /// `PIRN_MODULE.call(...)` or `.invoke(...)` to test them natively.
        pub static PIRN_MODULE: $crate::Module = $crate::Module {
            name: $($modname)*,
            knots: &[ $( $crate::__pirn_knot_def!($name [$($doc)*] ($($params)*) $ret) ),* ],
        };

        /// ABI export: the ABI version.
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn pirn_abi_version() -> i32 {
            $crate::__rt::abi_version()
        }

        /// ABI export: hands the host the manifest.
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn pirn_manifest() -> i32 {
            $crate::__rt::manifest(&PIRN_MODULE)
        }

        /// ABI export: one invocation.
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn pirn_invoke(request_len: i32) -> i32 {
            $crate::__rt::invoke(&PIRN_MODULE, request_len)
        }
    };
    (@munch [$($modname:tt)*] [$($defs:tt)*] $($bad:tt)+) => {
        ::core::compile_error!(
            "pirn_pdk::knots!: expected `fn name(input: Type, ...) -> Type { ... }` (with only doc comments as attributes)"
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __pirn_knot_fn {
    ([$($doc:literal)*] $name:ident ( $( $(#[doc = $adoc:literal])* $arg:ident : $aty:ty ),* $(,)? ) $ret:ty $body:block) => {
        $(#[doc = $doc])*
        pub fn $name( $($arg: $aty),* ) -> $ret $body
    };
    ([$($doc:literal)*] $name:ident ( $( $(#[doc = $adoc:literal])* $arg:ident : $aty:ty , )* .. $rest:ident : $rty:ty $(,)? ) $ret:ty $body:block) => {
        $(#[doc = $doc])*
        pub fn $name( $($arg: $aty,)* $rest: $rty ) -> $ret $body
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __pirn_knot_def {
    ($name:ident [$($doc:literal)*] ( $( $(#[doc = $adoc:literal])* $arg:ident : $aty:ty ),* $(,)? ) $ret:ty) => {
        $crate::KnotDef {
            name: ::core::stringify!($name),
            doc: &[$($doc),*],
            inputs: &[ $( $crate::InputDef {
                name: ::core::stringify!($arg),
                doc: &[$($adoc),*],
                ty: <$aty as $crate::AbiType>::abi_type,
                optional: <$aty as $crate::FromValue>::OPTIONAL,
            } ),* ],
            rest: ::core::option::Option::None,
            output: <$ret as $crate::KnotReturn>::output_type,
            call: {
                fn __pirn_call(
                    args: &mut $crate::Args,
                ) -> ::core::result::Result<$crate::Value, $crate::Stop> {
                    args.check_declared(&[$(::core::stringify!($arg)),*])?;
                    $crate::KnotReturn::into_result($name(
                        $( args.take::<$aty>(::core::stringify!($arg))? ),*
                    ))
                }
                __pirn_call
            },
        }
    };
    ($name:ident [$($doc:literal)*] ( $( $(#[doc = $adoc:literal])* $arg:ident : $aty:ty , )* .. $rest:ident : $rty:ty $(,)? ) $ret:ty) => {
        $crate::KnotDef {
            name: ::core::stringify!($name),
            doc: &[$($doc),*],
            inputs: &[ $( $crate::InputDef {
                name: ::core::stringify!($arg),
                doc: &[$($adoc),*],
                ty: <$aty as $crate::AbiType>::abi_type,
                optional: <$aty as $crate::FromValue>::OPTIONAL,
            } ),* ],
            rest: ::core::option::Option::Some($crate::rest_type::<$rty>),
            output: <$ret as $crate::KnotReturn>::output_type,
            call: {
                fn __pirn_call(
                    args: &mut $crate::Args,
                ) -> ::core::result::Result<$crate::Value, $crate::Stop> {
                    $crate::KnotReturn::into_result($name(
                        $( args.take::<$aty>(::core::stringify!($arg))?, )*
                        args.rest::<$rty>()?
                    ))
                }
                __pirn_call
            },
        }
    };
}
