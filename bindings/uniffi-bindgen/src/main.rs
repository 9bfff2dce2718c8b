//! `uniffi-bindgen generate <lib> --language kotlin|swift|python …`, at the library's uniffi version.
fn main() {
    uniffi::uniffi_bindgen_main()
}
