//! Every rendered file of the three reference configurations, pinned by insta snapshots with the
//! secrets (DNS token, password hash) redacted. Review changes with `cargo insta review`.

mod common;

use common::{CONFIGS, HASH, TOKEN, files_under, read, render};

#[test]
fn rendered_files_match_their_snapshots() {
    for config in CONFIGS {
        let out = render(config);
        let files = files_under(out.path());
        assert!(files.len() > 15, "{config}: only {files:?}");
        for file in files {
            let content = read(&out.path().join(&file));
            let name = format!("{config}__{}", file.display()).replace('/', "__");
            let mut settings = insta::Settings::clone_current();
            settings.set_snapshot_suffix(name);
            settings.set_prepend_module_to_snapshot(false);
            settings.add_filter(&regex_escape(TOKEN), "[CF_TOKEN]");
            settings.add_filter(&regex_escape(HASH), "[ARGON2ID_HASH]");
            settings.bind(|| insta::assert_snapshot!("rendered", content));
        }
    }
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}
