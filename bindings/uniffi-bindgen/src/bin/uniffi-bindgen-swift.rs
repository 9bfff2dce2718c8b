//! Swift-specific generator: headers and module maps for an XCFramework.
fn main() {
    uniffi::uniffi_bindgen_swift()
}
