//! Reading the multi-stage `Dockerfile`: its instructions and stages, and the chain of stages
//! a build target is made of, so tests can ask what an image really ends up with (its base
//! image, its user, its environment) when part of it comes from a shared stage.

use std::collections::BTreeMap;

/// One stage: the instructions from its `FROM` up to the next `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The name after `AS`, if any.
    pub name: Option<String>,
    /// What the stage starts from: an image, or the name of an earlier stage.
    pub base: String,
    /// Every instruction of the stage, its `FROM` first.
    pub instructions: Vec<String>,
}

impl Stage {
    /// Instructions of this stage that start with `keyword` (e.g. `"ENV "`).
    pub fn with_keyword<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.instructions
            .iter()
            .filter(move |i| i.starts_with(keyword))
            .map(String::as_str)
    }
}

/// Instructions of a Dockerfile: comments and blank lines dropped, continuations joined
/// (each continued line trimmed and joined by one space).
pub fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part.trim_end());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

/// The stages of a Dockerfile, in file order. Instructions before the first `FROM` (`ARG`)
/// belong to no stage and are dropped.
pub fn stages(text: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions(text) {
        if let Some(from) = instruction.strip_prefix("FROM ") {
            let words: Vec<&str> = from
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                _ => None,
            };
            stages.push(Stage {
                name,
                base: words.first().copied().unwrap_or_default().to_owned(),
                instructions: Vec::new(),
            });
        }
        if let Some(stage) = stages.last_mut() {
            stage.instructions.push(instruction);
        }
    }
    stages
}

/// The stage named `target` and every stage it is built on, the target first and the stage
/// that starts from an image last. `None` when `target` is not a stage, or when a stage
/// starts from a stage defined after it (Docker refuses that).
pub fn chain<'a>(stages: &'a [Stage], target: &str) -> Option<Vec<&'a Stage>> {
    let position = |name: &str| stages.iter().position(|s| s.name.as_deref() == Some(name));
    let mut index = position(target)?;
    let mut out = vec![&stages[index]];
    while let Some(parent) = position(&stages[index].base) {
        if parent >= index {
            return None;
        }
        index = parent;
        out.push(&stages[index]);
    }
    Some(out)
}

/// The image a chain of stages (from [`chain`]) finally starts from.
pub fn root_image<'a>(chain: &[&'a Stage]) -> Option<&'a str> {
    chain.last().map(|s| s.base.as_str())
}

/// The `USER` an image built from `chain` runs as: the last one set along it.
pub fn effective_user<'a>(chain: &[&'a Stage]) -> Option<&'a str> {
    chain.iter().find_map(|stage| {
        stage
            .with_keyword("USER ")
            .last()
            .and_then(|i| i.strip_prefix("USER "))
    })
}

/// The environment an image built from `chain` has: every `ENV KEY=value` along it, later
/// stages overriding earlier ones. Values are taken as written (no quotes, no spaces).
pub fn effective_env(chain: &[&Stage]) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for stage in chain.iter().rev() {
        for instruction in stage.with_keyword("ENV ") {
            for pair in instruction["ENV ".len()..].split_whitespace() {
                if let Some((key, value)) = pair.split_once('=') {
                    env.insert(key.to_owned(), value.to_owned());
                }
            }
        }
    }
    env
}

/// Every instruction of a chain starting with `keyword`, from the base stage to the target.
pub fn chain_instructions<'a>(chain: &[&'a Stage], keyword: &'a str) -> Vec<&'a str> {
    chain
        .iter()
        .rev()
        .flat_map(|stage| stage.with_keyword(keyword))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# comment
FROM rust:1 AS build
RUN make \\
    all

FROM debian:12 AS base
ENV A=1 \\
    B=2
USER 10:10

FROM base AS app
ENV B=3
COPY --from=build /out/app /app
USER 20:20

FROM --platform=linux/amd64 debian:12
";

    #[test]
    fn instructions_join_continuations_and_drop_comments() {
        let all = instructions(TEXT);
        assert_eq!(all[0], "FROM rust:1 AS build");
        assert_eq!(all[1], "RUN make all");
        assert_eq!(all[3], "ENV A=1 B=2");
    }

    #[test]
    fn stages_have_their_name_and_base() {
        let all = stages(TEXT);
        let names: Vec<Option<&str>> = all.iter().map(|s| s.name.as_deref()).collect();
        assert_eq!(names, [Some("build"), Some("base"), Some("app"), None]);
        let bases: Vec<&str> = all.iter().map(|s| s.base.as_str()).collect();
        assert_eq!(bases, ["rust:1", "debian:12", "base", "debian:12"]);
        assert_eq!(all[2].instructions.len(), 4);
    }

    #[test]
    fn a_chain_follows_the_stages_a_target_starts_from() {
        let all = stages(TEXT);
        let app = chain(&all, "app").expect("app");
        let names: Vec<Option<&str>> = app.iter().map(|s| s.name.as_deref()).collect();
        assert_eq!(names, [Some("app"), Some("base")]);
        assert_eq!(root_image(&app), Some("debian:12"));
        assert_eq!(effective_user(&app), Some("20:20"));
        let env = effective_env(&app);
        assert_eq!(env.get("A").map(String::as_str), Some("1"));
        assert_eq!(env.get("B").map(String::as_str), Some("3"));
        assert_eq!(
            chain_instructions(&app, "USER "),
            ["USER 10:10", "USER 20:20"]
        );
        let base = chain(&all, "base").expect("base");
        assert_eq!(effective_user(&base), Some("10:10"));
        assert!(chain(&all, "missing").is_none());
    }

    #[test]
    fn a_stage_built_on_a_later_stage_has_no_chain() {
        let all = stages("FROM later AS first\nFROM debian:12 AS later\n");
        assert!(chain(&all, "first").is_none());
    }
}
