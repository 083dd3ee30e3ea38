//! `hearth config check FILE` and `hearth config example`.

use std::path::Path;

/// Check a file; print errors with file:line:column: key. Returns whether it is valid.
pub fn check(path: &Path, print: bool) -> anyhow::Result<bool> {
    match hearth_config::load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            let c = &loaded.config;
            println!(
                "{}: OK — gateway {:?}, data dir {}, {} route(s), {} source(s), {} warning(s)",
                path.display(),
                c.gateway.id,
                c.gateway.data_dir.display(),
                c.routes.len(),
                c.sources.len(),
                loaded.warnings.len()
            );
            if print {
                println!(
                    "\n# effective configuration (defaults filled in)\n{}",
                    c.to_toml()?
                );
            }
            Ok(true)
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "{} is not valid: fix the line(s) above; every key is documented in `hearth config example`",
                path.display()
            );
            Ok(false)
        }
    }
}

/// Print the annotated example configuration.
pub fn example() {
    print!("{}", hearth_config::EXAMPLE);
}
