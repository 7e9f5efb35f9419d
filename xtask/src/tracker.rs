//! `cargo xtask tracker`: minifies the tracking script with the pinned terser
//! (`server/tracker/package.json`); `--check` fails when the committed build is stale.

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

#[derive(clap::Args)]
pub struct Args {
    /// Fail if the committed `dist/mallard.min.js` differs from a fresh build (CI).
    #[arg(long)]
    check: bool,
}

pub fn run(args: &Args, root: &std::path::Path) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(root.join("server/tracker"));
    if cmd!(sh, "npm --version")
        .quiet()
        .ignore_stdout()
        .run()
        .is_err()
    {
        bail!("npm is not installed: run `apt-get install -y nodejs npm`");
    }
    eprintln!("installing the pinned minifier (npm ci)…");
    cmd!(sh, "npm ci --no-audit --no-fund --loglevel=error")
        .run()
        .context("npm ci in server/tracker")?;
    cmd!(sh, "npm run -s build")
        .run()
        .context("minifying src/mallard.js")?;
    let size = std::fs::metadata(root.join("server/tracker/dist/mallard.min.js"))?.len();
    eprintln!(
        "dist/mallard.min.js: {size} bytes (the gzip budget is checked by the server's tests)"
    );
    if args.check
        && cmd!(sh, "git diff --quiet -- dist/mallard.min.js")
            .run()
            .is_err()
    {
        bail!(
            "dist/mallard.min.js does not match src/mallard.js: run `cargo xtask tracker` and commit the result"
        );
    }
    Ok(())
}
