//! Restoring a saved session from hostile files: the input is split into the JSON file and
//! the cache file. Anything but a typed error or a usable session is a bug.
#![no_main]

use std::sync::OnceLock;

use hearth::{BackendKind, Engine, EngineOptions, Session};
use libfuzzer_sys::fuzz_target;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/fixtures/gguf/lfm2-dense-h64-q8_0.gguf");
        Engine::load(path, EngineOptions::with_backend(BackendKind::Cpu)).expect("fixture")
    })
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (json, cache) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let dir = std::env::temp_dir().join(format!("hearth-fuzz-restore-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.json");
    std::fs::write(&path, json).unwrap();
    std::fs::write(dir.join("s.json.cache"), cache).unwrap();
    if let Ok(s) = Session::restore(engine(), &path) {
        let _ = s.prompt_tokens(s.messages());
    }
});
