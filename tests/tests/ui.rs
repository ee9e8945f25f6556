//! Compile-fail tests: every error the macros emit, pinned with the exact message and span.

#[test]
fn macro_misuse_is_a_spanned_compile_error() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/*.rs");
}
