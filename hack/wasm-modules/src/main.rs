//! `wasm-modules <src-dir> <out-dir>`: compile every `<name>.wat` in
//! `src-dir` to `<out-dir>/<name>.wasm` (WAT text to the binary format,
//! with the `wat` crate). Used by `hack/build-wasm-image.sh`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [src, out] = args.as_slice() else {
        bail!("usage: wasm-modules <src-dir> <out-dir>")
    };
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let mut built = 0;
    for entry in std::fs::read_dir(src).with_context(|| format!("list {}", src.display()))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("wat") {
            continue;
        }
        let binary = wat::parse_file(&path).with_context(|| format!("compile {}", path.display()))?;
        let target = out.join(path.with_extension("wasm").file_name().context("file name")?);
        std::fs::write(&target, binary).with_context(|| format!("write {}", target.display()))?;
        built += 1;
    }
    if built == 0 {
        bail!("no .wat files in {}", src.display());
    }
    println!("wasm-modules: {built} modules in {}", out.display());
    Ok(())
}
