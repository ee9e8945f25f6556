//! Compile-fail tests: every error the macros emit, pinned with the exact message and span;
//! and the macro uses that must compile.

#[test]
fn macro_misuse_is_a_spanned_compile_error() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/*.rs");
    cases.pass("ui-pass/*.rs");
}
