//! Keeps docs/deploy-vps.md honest.
//!
//! - Every shell block (```sh, ```bash, ```console, ```shell) carries exactly one marker on
//!   the line just before its fence or the line before that:
//!   `<!-- verified-by: <path>::<test_fn> -->` naming a test in this repository that runs the
//!   command, or `<!-- not-runnable-here: <reason> -->`. No marker stands alone.
//! - Every verified-by target exists: the file, and a `#[test]` function of that name; or
//!   `verified-by: .ci/run` for commands CI runs as they are (each command line of the block is
//!   a line of `.ci/run`).
//! - The guide's render commands really render (run through this build of xtask).
//! - Every MALLARD_* setting named in the guide's tables is a real setting (docs/configuration.md
//!   or the rendered /etc/mallard env templates), and the guide names every setting the
//!   templates write and every flag of `cargo xtask render`.

mod common;

use std::process::{Command, Output};

const GUIDE: &str = "docs/deploy-vps.md";
const SHELL_LANGUAGES: [&str; 4] = ["sh", "bash", "console", "shell"];
const VERIFIED_BY: &str = "verified-by:";
const NOT_RUNNABLE: &str = "not-runnable-here:";
const THIS_FILE: &str = "xtask/tests/docs_commands.rs";
const CI_SCRIPT: &str = ".ci/run";

/// Settings the guide documents ahead of docs/configuration.md because they are being built
/// (with what they are). Each is reported as a warning, never silently accepted; move a name out
/// of this list once docs/configuration.md lists it.
const AWAITING_CONFIGURATION_DOCS: [(&str, &str); 1] = [(
    "MALLARD_METRICS_TOKEN",
    "bearer token of the Prometheus /metrics endpoint",
)];

fn read(relative: &str) -> String {
    let path = common::repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn guide() -> String {
    let path = common::repo().join("docs/deploy-vps.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Marker {
    VerifiedBy {
        path: String,
        test: String,
    },
    /// Run as written by `.ci/run` (commands that are not `#[test]`s, like booting VMs).
    RunByCi,
    NotRunnable,
}

/// One fenced shell block of the guide.
#[derive(Debug)]
struct ShellBlock {
    /// 1-based line number of the opening fence.
    line: usize,
    marker: Option<Marker>,
    body: Vec<String>,
}

/// Parses one `<!-- verified-by: … -->` / `<!-- not-runnable-here: … -->` line. `None` when the
/// line is no marker at all; `Some(Err)` when it tries to be one and is malformed.
fn parse_marker(line: &str) -> Option<Result<Marker, String>> {
    let trimmed = line.trim();
    if !trimmed.starts_with("<!--")
        || !(trimmed.contains(VERIFIED_BY) || trimmed.contains(NOT_RUNNABLE))
    {
        return None;
    }
    let Some(inner) = trimmed
        .strip_prefix("<!--")
        .and_then(|rest| rest.strip_suffix("-->"))
        .map(str::trim)
    else {
        return Some(Err(format!(
            "a marker must be one whole line `<!-- … -->`: {trimmed}"
        )));
    };
    if let Some(target) = inner.strip_prefix(VERIFIED_BY) {
        let target = target.trim();
        if target == CI_SCRIPT {
            return Some(Ok(Marker::RunByCi));
        }
        return Some(match target.split_once("::") {
            Some((path, test))
                if !path.is_empty()
                    && !test.is_empty()
                    && !path.contains(char::is_whitespace)
                    && test.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                Ok(Marker::VerifiedBy {
                    path: path.to_owned(),
                    test: test.to_owned(),
                })
            }
            _ => Err(format!(
                "expected `verified-by: <path>::<test_fn_name>`, found `{target}`"
            )),
        });
    }
    if let Some(reason) = inner.strip_prefix(NOT_RUNNABLE) {
        return Some(if reason.trim().is_empty() {
            Err("`not-runnable-here:` needs a reason".to_owned())
        } else {
            Ok(Marker::NotRunnable)
        });
    }
    Some(Err(format!(
        "a marker starts with `{VERIFIED_BY}` or `{NOT_RUNNABLE}`: {trimmed}"
    )))
}

/// The guide's shell blocks with their markers, and every problem found, each naming its line.
fn shell_blocks(text: &str) -> (Vec<ShellBlock>, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut problems = Vec::new();
    let mut used_markers = std::collections::BTreeSet::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let Some(info) = line.strip_prefix("```") else {
            i += 1;
            continue;
        };
        // Find the closing fence first so a block's body is never read as markdown.
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].trim_end() == "```")
            .unwrap_or(lines.len());
        if end == lines.len() {
            problems.push(format!(
                "{GUIDE}:{}: this code block is never closed",
                i + 1
            ));
        }
        let language = info
            .trim()
            .split(|c: char| c.is_whitespace() || c == '{' || c == ',')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if SHELL_LANGUAGES.contains(&language.as_str()) {
            let mut markers = Vec::new();
            for k in [i.checked_sub(1), i.checked_sub(2)].into_iter().flatten() {
                match parse_marker(lines[k]) {
                    None => {}
                    Some(Ok(marker)) => {
                        used_markers.insert(k);
                        markers.push(marker);
                    }
                    Some(Err(why)) => {
                        used_markers.insert(k);
                        problems.push(format!("{GUIDE}:{}: {why}", k + 1));
                    }
                }
            }
            let marker = match markers.as_slice() {
                [one] => Some(one.clone()),
                [] => {
                    problems.push(format!(
                        "{GUIDE}:{}: this ```{language} block has no marker: put \
                         `<!-- verified-by: <path>::<test_fn> -->` or \
                         `<!-- not-runnable-here: <reason> -->` on the line before the fence \
                         (or the one before that)",
                        i + 1
                    ));
                    None
                }
                _ => {
                    problems.push(format!(
                        "{GUIDE}:{}: this ```{language} block has {} markers; exactly one is allowed",
                        i + 1,
                        markers.len()
                    ));
                    None
                }
            };
            blocks.push(ShellBlock {
                line: i + 1,
                marker,
                body: lines[i + 1..end].iter().map(|l| (*l).to_owned()).collect(),
            });
        }
        i = end + 1;
    }
    // A marker that no shell block uses is a mistake (a moved block, a wrong fence language).
    for (k, line) in lines.iter().enumerate() {
        if parse_marker(line).is_some() && !used_markers.contains(&k) {
            problems.push(format!(
                "{GUIDE}:{}: this marker is not on one of the two lines before a shell block's fence",
                k + 1
            ));
        }
    }
    (blocks, problems)
}

fn fail_on(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_shell_block_has_exactly_one_marker() {
    let (blocks, problems) = shell_blocks(&guide());
    fail_on(&problems);
    assert!(!blocks.is_empty(), "{GUIDE} has no shell blocks at all");
    let verified = blocks
        .iter()
        .filter(|b| matches!(b.marker, Some(Marker::VerifiedBy { .. } | Marker::RunByCi)))
        .count();
    let not_runnable = blocks
        .iter()
        .filter(|b| b.marker == Some(Marker::NotRunnable))
        .count();
    eprintln!(
        "{GUIDE}: {} shell blocks: {verified} verified-by, {not_runnable} not-runnable-here",
        blocks.len()
    );
}

/// The line index of `fn name(` in a Rust file, when a test attribute sits just above it.
fn test_fn_line(source: &str, name: &str) -> Result<usize, String> {
    let lines: Vec<&str> = source.lines().collect();
    let needle = format!("fn {name}(");
    let index = lines
        .iter()
        .position(|l| {
            let l = l.trim_start();
            l.starts_with(&needle) || l.starts_with(&format!("async {needle}"))
        })
        .ok_or_else(|| format!("has no `fn {name}`"))?;
    let attribute = lines[index.saturating_sub(4)..index]
        .iter()
        .any(|l| l.trim_start().starts_with("#[") && l.contains("test"));
    if attribute {
        Ok(index)
    } else {
        Err(format!("has `fn {name}` but it is not a #[test]"))
    }
}

#[test]
fn verified_by_targets_exist() {
    let (blocks, _) = shell_blocks(&guide());
    let mut problems = Vec::new();
    let ci = read(CI_SCRIPT);
    for block in &blocks {
        if block.marker == Some(Marker::RunByCi) {
            for command in block.body.iter().map(|l| without_comment(l)) {
                if !command.is_empty() && !ci.lines().any(|l| without_comment(l) == command) {
                    problems.push(format!(
                        "{GUIDE}:{}: verified-by {CI_SCRIPT}, but {CI_SCRIPT} has no line `{command}`",
                        block.line
                    ));
                }
            }
            continue;
        }
        let Some(Marker::VerifiedBy { path, test }) = &block.marker else {
            continue;
        };
        let file = common::repo().join(path);
        match std::fs::read_to_string(&file) {
            Err(e) => problems.push(format!(
                "{GUIDE}:{}: verified-by names {path}, which cannot be read ({e})",
                block.line
            )),
            Ok(source) => {
                if let Err(why) = test_fn_line(&source, test) {
                    problems.push(format!(
                        "{GUIDE}:{}: verified-by names {path}::{test}, but {path} {why}",
                        block.line
                    ));
                }
            }
        }
    }
    fail_on(&problems);
}

/// A shell line without its trailing `# comment` and surrounding blanks.
fn without_comment(line: &str) -> &str {
    let line = line.trim();
    if line.starts_with('#') {
        return "";
    }
    line.split_once(" #")
        .map_or(line, |(command, _)| command)
        .trim()
}

/// Splits one shell command line into words: whitespace, '…', "…" and `\x`; a `#` word starts
/// a comment. Expansions (`$`, backquotes, `~`) are refused: the guide's render commands are
/// meant to be pasted as they are.
fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed ' in: {line}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('$' | '`') => {
                            return Err(format!("expansion inside \"…\" in: {line}"));
                        }
                        Some('\\') => word.extend(chars.next()),
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed \" in: {line}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            '#' if !in_word => break,
            '$' | '`' | '~' | '|' | ';' | '&' | '<' | '>' | '(' | ')' => {
                return Err(format!(
                    "`{c}` is not allowed in a checked render command: {line}"
                ));
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The `cargo xtask render …` commands of a block, with backslash continuations joined and an
/// optional `$ ` prompt removed.
fn render_commands(block: &ShellBlock) -> Vec<String> {
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in &block.body {
        let line = line.trim();
        let line = line.strip_prefix("$ ").unwrap_or(line);
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                let command = std::mem::take(&mut current);
                if command.trim_start().starts_with("cargo xtask render") {
                    commands.push(command.trim().to_owned());
                }
            }
        }
    }
    commands
}

/// Runs one of the guide's render commands with this build of xtask into a new folder (any
/// `--out` of the guide is replaced), and checks what it wrote.
fn run_render_command(block_line: usize, command: &str) -> (tempfile::TempDir, Output) {
    let words = shell_words(command).unwrap_or_else(|e| panic!("{GUIDE}:{block_line}: {e}"));
    assert_eq!(
        words.get(..3),
        Some(&["cargo".to_owned(), "xtask".to_owned(), "render".to_owned()][..]),
        "{GUIDE}:{block_line}: {command}"
    );
    let mut args = vec!["render".to_owned()];
    let mut rest = words[3..].iter();
    while let Some(word) = rest.next() {
        if word == "--out" {
            rest.next();
        } else if !word.starts_with("--out=") {
            args.push(word.clone());
        }
    }
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().join("mallard-deploy");
    args.push("--out".to_owned());
    args.push(dir.display().to_string());
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(common::repo())
        .env_remove("MM_CF_TOKEN")
        .env_remove("MM_DOMAIN")
        .env_remove("MM_EMAIL")
        .args(&args)
        .output()
        .expect("run xtask");
    assert!(
        output.status.success(),
        "{GUIDE}:{block_line}: `{command}` failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let expected: &[&str] = if args.iter().any(|a| a == "--for-image") {
        &["image-user-data.yaml"]
    } else {
        &[
            "user-data.yaml",
            "image-user-data.yaml",
            "provision.sh",
            "Caddyfile",
            "docker-compose.production.yml",
            "host/etc/mallard/instance.env",
            "host/etc/caddy/caddy.env",
            "host/usr/local/sbin/mallard-setup",
        ]
    };
    for name in expected {
        assert!(
            dir.join(name).is_file(),
            "{GUIDE}:{block_line}: `{command}` did not write {name}"
        );
    }
    (out, output)
}

/// The guide's blocks marked `verified-by: xtask/tests/docs_commands.rs::<test>`.
fn blocks_verified_by(test: &str) -> Vec<ShellBlock> {
    let (blocks, problems) = shell_blocks(&guide());
    fail_on(&problems);
    let blocks: Vec<ShellBlock> = blocks
        .into_iter()
        .filter(|b| {
            b.marker
                == Some(Marker::VerifiedBy {
                    path: THIS_FILE.to_owned(),
                    test: test.to_owned(),
                })
        })
        .collect();
    assert!(
        !blocks.is_empty(),
        "no block of {GUIDE} is marked `verified-by: {THIS_FILE}::{test}`"
    );
    blocks
}

#[test]
fn the_guide_render_command_works() {
    for block in blocks_verified_by("the_guide_render_command_works") {
        let commands = render_commands(&block);
        assert!(
            !commands.is_empty(),
            "{GUIDE}:{}: the block has no `cargo xtask render` command",
            block.line
        );
        for command in commands {
            let (out, output) = run_render_command(block.line, &command);
            let dir = out.path().join("mallard-deploy");
            let words = shell_words(&command).expect("checked above");
            let value = |flag: &str| {
                words
                    .iter()
                    .position(|w| w == flag)
                    .and_then(|i| words.get(i + 1))
                    .cloned()
            };
            // The guide's example values are what lands in the per-instance files.
            let caddy_env =
                std::fs::read_to_string(dir.join("host/etc/caddy/caddy.env")).expect("caddy.env");
            for (flag, key) in [("--domain", "MM_DOMAINS"), ("--email", "MM_EMAIL")] {
                let wanted = value(flag).unwrap_or_else(|| {
                    panic!("{GUIDE}:{}: the render example has no {flag}", block.line)
                });
                assert!(
                    caddy_env.contains(&format!("{key}='{wanted}")),
                    "{GUIDE}:{}: {flag} {wanted} is not in caddy.env:\n{caddy_env}",
                    block.line
                );
            }
            if let Some(token) = value("--cf-token") {
                assert!(caddy_env.contains(&format!("CF_API_TOKEN='{token}'")));
                let user_data =
                    std::fs::read_to_string(dir.join("user-data.yaml")).expect("user-data");
                assert!(user_data.contains(&format!("CF_API_TOKEN='{token}'")));
            }
            // What the guide tells the operator to expect on the terminal.
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                stdout.contains("Admin password (shown once"),
                "{GUIDE}:{}: no admin password printed:\n{stdout}",
                block.line
            );
        }
    }
}

#[test]
fn the_guides_render_variants_work() {
    for block in blocks_verified_by("the_guides_render_variants_work") {
        let commands = render_commands(&block);
        assert!(
            !commands.is_empty(),
            "{GUIDE}:{}: the block has no `cargo xtask render` command",
            block.line
        );
        for command in commands {
            run_render_command(block.line, &command);
        }
    }
}

/// Whether `name` occurs in `text` as a whole setting name (not as part of a longer one).
fn names_setting(text: &str, name: &str) -> bool {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

/// Every distinct `PREFIX…` setting name in `text` (upper case, digits, `_`).
fn setting_names(text: &str, prefix: &str) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for (at, _) in text.match_indices(prefix) {
        if text[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        let name: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        let name = name.trim_end_matches('_');
        if name.len() > prefix.len() {
            names.insert(name.to_owned());
        }
    }
    names.into_iter().collect()
}

#[test]
fn mallard_settings_in_the_guides_tables_exist() {
    let sources = [
        "docs/configuration.md",
        "cloud-init/files/etc/mallard/mallard.env.hbs",
        "cloud-init/files/etc/mallard/instance.env.hbs",
    ];
    let texts: Vec<(&str, String)> = sources.iter().map(|s| (*s, read(s))).collect();
    let guide = guide();
    let mut problems = Vec::new();
    let mut table_settings = 0;
    for (n, line) in guide.lines().enumerate() {
        if !line.trim_start().starts_with('|') {
            continue;
        }
        for name in setting_names(line, "MALLARD_") {
            table_settings += 1;
            let documented: Vec<&str> = texts
                .iter()
                .filter(|(_, text)| names_setting(text, &name))
                .map(|(source, _)| *source)
                .collect();
            if !documented.is_empty() {
                continue;
            }
            match AWAITING_CONFIGURATION_DOCS.iter().find(|(n, _)| *n == name) {
                Some((_, what)) => eprintln!(
                    "warning: {GUIDE}:{}: {name} ({what}) is not yet in docs/configuration.md",
                    n + 1
                ),
                None => problems.push(format!(
                    "{GUIDE}:{}: {name} is in a table of the guide but in none of {sources:?}: \
                     a setting that does not exist, or one to document in docs/configuration.md",
                    n + 1
                )),
            }
        }
    }
    assert!(
        table_settings > 0,
        "no MALLARD_* setting in any table of {GUIDE}"
    );
    // Names on the waiting list that have since been documented: time to shorten the list.
    for (name, _) in AWAITING_CONFIGURATION_DOCS {
        if names_setting(&texts[0].1, name) {
            eprintln!(
                "note: {name} is now in docs/configuration.md: remove it from \
                 AWAITING_CONFIGURATION_DOCS in {THIS_FILE}"
            );
        }
    }
    fail_on(&problems);
}

#[test]
fn the_guide_names_every_setting_the_templates_write() {
    let guide = guide();
    let mut problems = Vec::new();
    for (template, prefix) in [
        ("cloud-init/files/etc/mallard/mallard.env.hbs", "MALLARD_"),
        ("cloud-init/files/etc/mallard/instance.env.hbs", "MALLARD_"),
        ("cloud-init/files/etc/mallard/deploy.env.hbs", "MM_"),
        ("cloud-init/files/etc/caddy/caddy.env.hbs", "MM_"),
        ("cloud-init/files/etc/caddy/caddy.env.hbs", "CF_API_TOKEN"),
    ] {
        let text = read(template);
        let names = if prefix == "CF_API_TOKEN" {
            vec![prefix.to_owned()]
        } else {
            setting_names(&text, prefix)
        };
        assert!(!names.is_empty(), "{template} has no {prefix} setting");
        for name in names {
            if !names_setting(&guide, &name) {
                problems.push(format!(
                    "{template} writes {name}, which {GUIDE} never names"
                ));
            }
        }
    }
    // Every file of the manifest, with its mode.
    let manifest = read("cloud-init/manifest.toml");
    for line in manifest.lines() {
        if let Some(path) = line
            .strip_prefix("path = \"")
            .and_then(|rest| rest.strip_suffix('"'))
            && !guide.contains(path)
        {
            problems.push(format!(
                "cloud-init/manifest.toml lists {path}, which {GUIDE} never names"
            ));
        }
    }
    fail_on(&problems);
}

#[test]
fn the_guide_names_every_render_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["render", "--help"])
        .output()
        .expect("run xtask render --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    let flags: std::collections::BTreeSet<&str> = help
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .filter_map(|l| l.split(|c: char| c.is_whitespace() || c == '=').next())
        .filter(|flag| *flag != "help")
        .collect();
    assert!(flags.len() > 10, "few flags found in:\n{help}");
    let guide = guide();
    let missing: Vec<String> = flags
        .iter()
        .map(|flag| format!("--{flag}"))
        .filter(|flag| !names_setting_flag(&guide, flag))
        .collect();
    assert!(
        missing.is_empty(),
        "`cargo xtask render` has flags {GUIDE} never names: {missing:?}"
    );
}

/// Whether `--flag` occurs in `text`, not as the start of a longer flag.
fn names_setting_flag(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(at, _)| {
        !text[at + flag.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

#[test]
fn the_marker_parser_and_word_splitter_behave() {
    let (blocks, problems) = shell_blocks(
        "text\n<!-- not-runnable-here: needs a VPS -->\n```sh\nls\n```\n\n```bash\necho\n```\n\
         <!-- verified-by: a.rs::b -->\n\n```console\n$ x\n```\n```yaml\nkey: 1\n```\n\
         <!-- verified-by: bad -->\n```sh\n```\n<!-- verified-by: a.rs::b -->\nprose\n\nmore\n",
    );
    assert_eq!(blocks.len(), 4, "{blocks:?}");
    assert_eq!(blocks[0].marker, Some(Marker::NotRunnable));
    assert_eq!(blocks[0].body, ["ls"]);
    assert_eq!(blocks[1].marker, None);
    assert_eq!(
        blocks[2].marker,
        Some(Marker::VerifiedBy {
            path: "a.rs".into(),
            test: "b".into()
        })
    );
    assert_eq!(
        parse_marker("<!-- verified-by: .ci/run -->"),
        Some(Ok(Marker::RunByCi))
    );
    assert_eq!(
        without_comment("  cargo xtask vm-test   # both paths"),
        "cargo xtask vm-test"
    );
    assert_eq!(without_comment("# only a comment"), "");
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].contains(":7:") && problems[0].contains("no marker"));
    assert!(problems[1].contains(":18:") && problems[1].contains("verified-by: <path>"));
    assert!(problems[2].contains(":19:") && problems[2].contains("no marker"));
    assert!(problems[3].contains(":21:") && problems[3].contains("not on one of"));

    assert_eq!(
        shell_words(r#"cargo xtask render --domain 'a b' --email "c@d" x\ y # note"#),
        Ok(vec![
            "cargo".into(),
            "xtask".into(),
            "render".into(),
            "--domain".into(),
            "a b".into(),
            "--email".into(),
            "c@d".into(),
            "x y".into()
        ])
    );
    assert!(shell_words("cargo xtask render --cf-token $TOKEN").is_err());
    assert!(shell_words("cargo xtask render --ssh-key ~/.ssh/id.pub").is_err());

    let block = ShellBlock {
        line: 1,
        marker: None,
        body: vec![
            "cargo xtask render \\".into(),
            "  --domain a.example.com \\".into(),
            "  --email a@example.com".into(),
            "ls mallard-deploy".into(),
        ],
    };
    assert_eq!(
        render_commands(&block),
        ["cargo xtask render  --domain a.example.com  --email a@example.com"]
    );

    assert!(test_fn_line("#[test]\nfn here() {}\n", "here").is_ok());
    assert!(test_fn_line("#[tokio::test]\nasync fn here() {}\n", "here").is_ok());
    assert!(test_fn_line("fn helper() {}\n", "helper").is_err());
    assert!(test_fn_line("#[test]\nfn here_too() {}\n", "here").is_err());
    assert!(names_setting(
        "MALLARD_LOG_FORMAT=json",
        "MALLARD_LOG_FORMAT"
    ));
    assert!(!names_setting("MALLARD_LOG_FORMAT=json", "MALLARD_LOG"));
    assert!(names_setting_flag("use --ssh-key KEY", "--ssh-key"));
    assert!(!names_setting_flag("use --ssh-keys", "--ssh-key"));
    assert_eq!(
        setting_names("| `MALLARD_A_B` | MALLARD_C_, xMALLARD_D |", "MALLARD_"),
        ["MALLARD_A_B", "MALLARD_C"]
    );
}
