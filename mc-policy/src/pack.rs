//! Loading policy packs from disk: Rego modules, the AST facts the runner needs, and
//! golden fixtures.
//!
//! A *pack* is a directory holding `.rego` files directly (tests conventionally in
//! `*_test.rego`) and, optionally, `fixtures/` with golden inputs `NAME.json` and the
//! expected decisions beside them in `NAME.expected.json`. A *suite* is every pack
//! found under a root directory (`policy/`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use regorus::{Engine, Value};
use serde::Deserialize;

use crate::error::PolicyError;

/// What a loader should include.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Load `*_test.rego` files (needed by the test runner, not by production decisions).
    pub include_tests: bool,
    /// Load golden fixtures from `fixtures/`.
    pub include_fixtures: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            include_tests: true,
            include_fixtures: true,
        }
    }
}

/// One rule definition found in a module's AST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    /// Rule name (the head's reference as written, e.g. `deny_region`).
    pub name: String,
    /// 1-based line of the rule.
    pub line: u32,
    /// 1-based column of the rule.
    pub col: u32,
    /// Whether the rule is a function (has arguments).
    pub is_function: bool,
}

/// One Rego module of a pack.
#[derive(Debug, Clone)]
pub struct ModuleInfo {
    /// The file as loaded (the key used in coverage and reports).
    pub file: String,
    /// Package path without the `data.` prefix, e.g. `access`.
    pub package: String,
    /// The rules defined in the module, in source order.
    pub rules: Vec<RuleInfo>,
}

/// A `test_*` (or skipped `todo_test_*`) rule discovered from the AST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// Package path without `data.`.
    pub package: String,
    /// Rule name, e.g. `test_viewer_may_not_cancel`.
    pub name: String,
    /// File holding the rule.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// `todo_` prefix: reported as skipped, never evaluated.
    pub skip: bool,
}

impl TestCase {
    /// Full rule path, e.g. `data.access.test_viewer_may_not_cancel`.
    pub fn rule_path(&self) -> String {
        format!("data.{}.{}", self.package, self.name)
    }
}

/// The expected decisions of a golden fixture (`NAME.expected.json`).
///
/// Missing `deny`/`warn` mean "none expected": a fixture states every message its
/// input must produce, so a new rule that fires unexpectedly fails the suite.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Human description of the case.
    #[serde(default)]
    pub description: Option<String>,
    /// Namespaces to evaluate (default: every namespace of the pack).
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    /// Exact set of failure messages (`deny*` and `violation*` rules).
    #[serde(default)]
    pub deny: Vec<String>,
    /// Exact set of warning messages (`warn*` rules).
    #[serde(default)]
    pub warn: Vec<String>,
    /// Exact set of rule names whose failures an `exception` waived.
    #[serde(default)]
    pub exceptions: Vec<String>,
    /// Expected values of other rules, keyed `rule` (first namespace) or `ns.rule`.
    #[serde(default)]
    pub rules: BTreeMap<String, serde_json::Value>,
}

/// A golden fixture: an input document and its expected decisions.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// Fixture name (file stem), e.g. `operator_cancel`.
    pub name: String,
    /// The input file.
    pub input_path: PathBuf,
    /// The expectation file.
    pub expected_path: PathBuf,
    /// The input, ready for the engine.
    pub input: Value,
    /// The expectation.
    pub expected: Expectation,
}

/// A loaded pack: an engine holding its modules, and what the AST says about them.
#[derive(Debug, Clone)]
pub struct Pack {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) engine: Engine,
    pub(crate) modules: Vec<ModuleInfo>,
    pub(crate) tests: Arc<Vec<TestCase>>,
    pub(crate) fixtures: Arc<Vec<Fixture>>,
}

impl Pack {
    /// Loads the pack in `dir` with tests and fixtures.
    ///
    /// # Errors
    /// [`PolicyError::Io`]/[`PolicyError::NotUtf8`] for unreadable files,
    /// [`PolicyError::Syntax`] with file:line:col for Rego that does not parse,
    /// [`PolicyError::UnknownFunction`] for a call to an unknown builtin,
    /// [`PolicyError::InvalidFixture`] for fixtures that are not JSON or lack an expectation.
    pub fn load(dir: &Path) -> Result<Pack, PolicyError> {
        Pack::load_with(dir, LoadOptions::default())
    }

    /// Loads the pack in `dir` with explicit [`LoadOptions`].
    ///
    /// # Errors
    /// As [`Pack::load`]; also [`PolicyError::NoPacks`] when `dir` has no `.rego` file.
    pub fn load_with(dir: &Path, options: LoadOptions) -> Result<Pack, PolicyError> {
        let mut files: Vec<PathBuf> = read_dir_sorted(dir)?
            .into_iter()
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "rego"))
            .filter(|p| options.include_tests || !is_test_file(p))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(PolicyError::NoPacks {
                dir: dir.to_path_buf(),
            });
        }
        let mut sources = Vec::with_capacity(files.len());
        for path in files {
            let bytes = fs::read(&path).map_err(|source| PolicyError::Io {
                path: path.clone(),
                source,
            })?;
            let text = String::from_utf8(bytes)
                .map_err(|_| PolicyError::NotUtf8 { path: path.clone() })?;
            sources.push((display(&path), text));
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| display(dir));
        let mut pack = Pack::from_sources(&name, &sources)?;
        pack.dir = dir.to_path_buf();
        if options.include_fixtures {
            pack.fixtures = Arc::new(load_fixtures(&dir.join("fixtures"))?);
        }
        Ok(pack)
    }

    /// Builds a pack from in-memory sources `(file name, rego text)`; no fixtures.
    ///
    /// # Errors
    /// [`PolicyError::Syntax`] and [`PolicyError::UnknownFunction`] as for [`Pack::load`].
    pub fn from_sources(name: &str, sources: &[(String, String)]) -> Result<Pack, PolicyError> {
        let mut engine = Engine::new();
        for (file, text) in sources {
            // The parser is third-party code fed untrusted text: a panic in it must become
            // an error naming the file, not take the host down.
            let added = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                engine.add_policy(file.clone(), text.clone())
            }));
            match added {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(PolicyError::from_parse(file, &e)),
                Err(_) => {
                    return Err(PolicyError::Syntax {
                        file: file.clone(),
                        line: 0,
                        col: 0,
                        message: "the Rego parser panicked on this file".into(),
                    });
                }
            }
        }
        let ast = engine.get_ast_as_json().map_err(|e| PolicyError::Eval {
            rule: "<ast>".into(),
            message: e.to_string(),
        })?;
        let ast: serde_json::Value = serde_json::from_str(&ast).map_err(|e| PolicyError::Eval {
            rule: "<ast>".into(),
            message: e.to_string(),
        })?;
        let analysis = analyse(&ast);
        check_calls(&analysis)?;
        let tests = discover_tests(&analysis.modules);
        Ok(Pack {
            name: name.to_owned(),
            dir: PathBuf::new(),
            engine,
            modules: analysis.modules,
            tests: Arc::new(tests),
            fixtures: Arc::new(Vec::new()),
        })
    }

    /// The pack's name (its directory name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory the pack was loaded from (empty for in-memory packs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The modules, in load order.
    pub fn modules(&self) -> &[ModuleInfo] {
        &self.modules
    }

    /// The discovered tests, in source order.
    pub fn tests(&self) -> &[TestCase] {
        &self.tests
    }

    /// The golden fixtures, sorted by name.
    pub fn fixtures(&self) -> &[Fixture] {
        &self.fixtures
    }

    /// The distinct packages (namespaces) the pack defines, sorted.
    pub fn namespaces(&self) -> Vec<String> {
        self.modules
            .iter()
            .map(|m| m.package.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Names of the non-function rules defined in `namespace`, deduplicated, in source order.
    pub fn rule_names(&self, namespace: &str) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.modules
            .iter()
            .filter(|m| m.package == namespace)
            .flat_map(|m| m.rules.iter())
            .filter(|r| !r.is_function && seen.insert(r.name.clone()))
            .map(|r| r.name.clone())
            .collect()
    }

    /// A clone of the prepared engine (cheap: modules are shared).
    pub fn engine(&self) -> Engine {
        self.engine.clone()
    }
}

/// Every pack under `root`: `root` itself if it holds `.rego` files, and every
/// sub-directory that does (hidden directories and `fixtures/` are skipped), sorted by path.
///
/// # Errors
/// [`PolicyError::NoPacks`] when none is found, and every error of [`Pack::load_with`].
pub fn load_suite(root: &Path, options: LoadOptions) -> Result<Vec<Pack>, PolicyError> {
    let mut dirs = Vec::new();
    collect_pack_dirs(root, &mut dirs, 0)?;
    if dirs.is_empty() {
        return Err(PolicyError::NoPacks {
            dir: root.to_path_buf(),
        });
    }
    dirs.into_iter()
        .map(|d| Pack::load_with(&d, options))
        .collect()
}

const MAX_DEPTH: usize = 16;

fn collect_pack_dirs(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), PolicyError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let meta = fs::metadata(dir).map_err(|source| PolicyError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(PolicyError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let entries = read_dir_sorted(dir)?;
    if entries
        .iter()
        .any(|p| p.is_file() && p.extension().is_some_and(|e| e == "rego"))
    {
        out.push(dir.to_path_buf());
    }
    for entry in entries {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Symlinked directories are not followed: a link cycle must not hang the loader.
        let is_real_dir = fs::symlink_metadata(&entry).is_ok_and(|m| m.is_dir());
        if is_real_dir && !name.starts_with('.') && name != "fixtures" {
            collect_pack_dirs(&entry, out, depth + 1)?;
        }
    }
    Ok(())
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let rd = fs::read_dir(dir).map_err(|source| PolicyError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|source| PolicyError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        out.push(entry.path());
    }
    out.sort();
    Ok(out)
}

fn is_test_file(p: &Path) -> bool {
    p.file_stem()
        .is_some_and(|s| s.to_string_lossy().ends_with("_test"))
}

pub(crate) fn display(p: &Path) -> String {
    let s = p.to_string_lossy().into_owned();
    s.strip_prefix("./").map(str::to_owned).unwrap_or(s)
}

fn load_fixtures(dir: &Path) -> Result<Vec<Fixture>, PolicyError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let entries = read_dir_sorted(dir)?;
    let json: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
        .collect();
    let mut fixtures = Vec::new();
    for path in &json {
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        if let Some(stem) = file.strip_suffix(".expected.json") {
            let input = dir.join(format!("{stem}.json"));
            if !input.is_file() {
                return Err(PolicyError::InvalidFixture {
                    path: (*path).clone(),
                    reason: format!("expectation without input file {}", display(&input)),
                });
            }
            continue;
        }
        let stem = file.strip_suffix(".json").unwrap_or(&file).to_owned();
        let expected_path = dir.join(format!("{stem}.expected.json"));
        if !expected_path.is_file() {
            return Err(PolicyError::InvalidFixture {
                path: (*path).clone(),
                reason: format!("missing expectation file {}", display(&expected_path)),
            });
        }
        let input_text = read_text(path)?;
        let input =
            parse_input_json(&input_text).map_err(|reason| PolicyError::InvalidFixture {
                path: (*path).clone(),
                reason,
            })?;
        let expected_text = read_text(&expected_path)?;
        let expected: Expectation =
            serde_json::from_str(&expected_text).map_err(|e| PolicyError::InvalidFixture {
                path: expected_path.clone(),
                reason: format!("not a valid expectation: {e}"),
            })?;
        fixtures.push(Fixture {
            name: stem,
            input_path: (*path).clone(),
            expected_path,
            input,
            expected,
        });
    }
    Ok(fixtures)
}

fn read_text(path: &Path) -> Result<String, PolicyError> {
    let bytes = fs::read(path).map_err(|source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| PolicyError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// Parses a JSON document into an engine value, with serde_json's line/column on error.
pub(crate) fn parse_input_json(text: &str) -> Result<Value, String> {
    // serde_json first: it reports line and column, and rejects trailing garbage.
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    json_to_value(&json)
}

/// Converts a serde_json value to an engine value.
pub(crate) fn json_to_value(json: &serde_json::Value) -> Result<Value, String> {
    let text = serde_json::to_string(json).map_err(|e| e.to_string())?;
    Value::from_json_str(&text).map_err(|e| format!("not representable in Rego: {e}"))
}

// ---------------------------------------------------------------------------
// AST analysis (regorus `ast` feature: `Engine::get_ast_as_json`).
// ---------------------------------------------------------------------------

struct CallSite {
    file: String,
    package: String,
    name: String,
    line: u32,
    col: u32,
}

struct Analysis {
    modules: Vec<ModuleInfo>,
    imports: BTreeMap<String, BTreeSet<String>>,
    calls: Vec<CallSite>,
}

fn analyse(ast: &serde_json::Value) -> Analysis {
    let mut modules = Vec::new();
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut calls = Vec::new();
    for entry in ast.as_array().map(Vec::as_slice).unwrap_or_default() {
        let file = entry
            .pointer("/source/file")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let module = &entry["ast"];
        let package = ref_path(&module["package"]["refr"]).unwrap_or_default();
        let aliases = imports.entry(file.clone()).or_default();
        for import in module["imports"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if let Some(alias) = import["as"].as_str() {
                aliases.insert(alias.to_owned());
            } else if let Some(last) = ref_path(&import["refr"])
                .as_deref()
                .and_then(|p| p.rsplit('.').next())
            {
                aliases.insert(last.to_owned());
            }
        }
        let mut rules = Vec::new();
        for rule in module["rules"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if let Some(info) = rule_info(rule) {
                rules.push(info);
            }
            collect_calls(rule, &file, &package, &mut calls);
        }
        modules.push(ModuleInfo {
            file,
            package,
            rules,
        });
    }
    Analysis {
        modules,
        imports,
        calls,
    }
}

fn span_of(v: &serde_json::Value) -> (u32, u32) {
    let line = v["span"]["line"].as_u64().unwrap_or(0);
    let col = v["span"]["col"].as_u64().unwrap_or(0);
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

/// The start of a reference chain is the span of its innermost `refr` (`a` in `a.b.c`).
fn innermost_start(expr: &serde_json::Value) -> (u32, u32) {
    let mut node = expr;
    while let Some(inner) = node
        .get("refr")
        .and_then(|r| r.as_object())
        .and_then(|o| o.values().next())
    {
        node = inner;
    }
    span_of(node)
}

fn rule_info(rule: &serde_json::Value) -> Option<RuleInfo> {
    if let Some(spec) = rule.get("Spec") {
        let (line, col) = span_of(spec);
        let head = spec.get("head")?;
        let (variant, body) = head.as_object()?.iter().next()?;
        let name = ref_path(&body["refr"])?;
        return Some(RuleInfo {
            name,
            line,
            col,
            is_function: variant == "Func",
        });
    }
    if let Some(default) = rule.get("Default") {
        let (line, col) = span_of(default);
        let name = ref_path(&default["refr"])?;
        let is_function = default["args"].as_array().is_some_and(|a| !a.is_empty());
        return Some(RuleInfo {
            name,
            line,
            col,
            is_function,
        });
    }
    None
}

/// Renders a reference expression (`Var`, `RefDot`, `RefBrack` with a string index) as a
/// dotted path; `None` for anything else.
fn ref_path(expr: &serde_json::Value) -> Option<String> {
    if let Some(var) = expr.get("Var") {
        return var["value"].as_str().map(str::to_owned);
    }
    if let Some(dot) = expr.get("RefDot") {
        let base = ref_path(&dot["refr"])?;
        let field = dot["field"].as_array()?.get(1)?.as_str()?;
        return Some(format!("{base}.{field}"));
    }
    if let Some(brack) = expr.get("RefBrack") {
        let base = ref_path(&brack["refr"])?;
        let key = brack["index"].get("String")?["value"].as_str()?;
        return Some(format!("{base}.{key}"));
    }
    None
}

fn collect_calls(node: &serde_json::Value, file: &str, package: &str, out: &mut Vec<CallSite>) {
    match node {
        serde_json::Value::Object(map) => {
            if let Some((call, name)) = map
                .get("Call")
                .and_then(|call| ref_path(&call["fcn"]).map(|name| (call, name)))
            {
                // Point at the function name, not the parenthesis.
                let (line, col) = call["fcn"]
                    .as_object()
                    .and_then(|o| o.values().next())
                    .map(innermost_start)
                    .filter(|&(l, _)| l > 0)
                    .unwrap_or_else(|| span_of(call));
                out.push(CallSite {
                    file: file.to_owned(),
                    package: package.to_owned(),
                    name,
                    line,
                    col,
                });
            }
            for v in map.values() {
                collect_calls(v, file, package, out);
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                collect_calls(v, file, package, out);
            }
        }
        _ => {}
    }
}

/// Rejects calls that can only fail at evaluation time: not a builtin of this engine,
/// not `print`, not a function defined by the pack, and not reached through an import.
/// OPA rejects these at compile time; regorus only when the call is evaluated, which
/// would hide the mistake until the one test (or production input) that reaches it.
fn check_calls(analysis: &Analysis) -> Result<(), PolicyError> {
    let functions: BTreeSet<String> = analysis
        .modules
        .iter()
        .flat_map(|m| {
            m.rules
                .iter()
                .filter(|r| r.is_function)
                .map(move |r| format!("data.{}.{}", m.package, r.name))
        })
        .collect();
    for call in &analysis.calls {
        let name = call.name.as_str();
        let known = if name.starts_with("data.") {
            functions.contains(name)
        } else {
            let first = name.split('.').next().unwrap_or(name);
            name == "print"
                || regorus::unstable::BUILTINS.contains_key(name)
                || functions.contains(&format!("data.{}.{}", call.package, name))
                || analysis
                    .imports
                    .get(&call.file)
                    .is_some_and(|a| a.contains(first))
        };
        if !known {
            return Err(PolicyError::UnknownFunction {
                file: call.file.clone(),
                line: call.line,
                col: call.col,
                name: call.name.clone(),
            });
        }
    }
    Ok(())
}

fn discover_tests(modules: &[ModuleInfo]) -> Vec<TestCase> {
    let mut seen = BTreeSet::new();
    let mut tests = Vec::new();
    for module in modules {
        for rule in &module.rules {
            if rule.is_function {
                continue;
            }
            let skip = rule.name.starts_with("todo_test_");
            if !(skip || rule.name.starts_with("test_")) || rule.name.contains('.') {
                continue;
            }
            // Incremental definitions of one test rule are one test (they OR together).
            if !seen.insert((module.package.clone(), rule.name.clone())) {
                continue;
            }
            tests.push(TestCase {
                package: module.package.clone(),
                name: rule.name.clone(),
                file: module.file.clone(),
                line: rule.line,
                col: rule.col,
                skip,
            });
        }
    }
    tests
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(name: &str, text: &str) -> Vec<(String, String)> {
        vec![(name.to_owned(), text.to_owned())]
    }

    #[test]
    fn tests_are_discovered_from_the_ast_including_failing_ones() {
        let pack = Pack::from_sources(
            "p",
            &src(
                "p.rego",
                "package p\n\nallow if input.x == 1\n\ntest_ok if allow with input as {\"x\": 1}\n\ntest_bad if allow with input as {\"x\": 2}\n\ntodo_test_later if false\n\nhelper(x) := x + 1\n",
            ),
        )
        .expect("loads");
        let names: Vec<_> = pack.tests().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["test_ok", "test_bad", "todo_test_later"]);
        assert_eq!(pack.tests()[1].line, 7);
        assert!(pack.tests()[2].skip);
        assert!(!pack.tests()[0].skip);
        assert_eq!(pack.namespaces(), ["p"]);
        assert!(pack.rule_names("p").contains(&"allow".to_owned()));
        assert!(!pack.rule_names("p").contains(&"helper".to_owned()));
    }

    #[test]
    fn syntax_errors_carry_file_and_line() {
        let err = Pack::from_sources(
            "p",
            &src("x/bad.rego", "package p\n\nallow if {\n  input.x ==\n}\n"),
        )
        .expect_err("must not load");
        match err {
            PolicyError::Syntax { file, line, .. } => {
                assert_eq!(file, "x/bad.rego");
                assert_eq!(line, 5);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn v0_syntax_is_rejected() {
        let err = Pack::from_sources("p", &src("old.rego", "package p\n\nallow { true }\n"))
            .expect_err("v0 must not load");
        assert!(err.to_string().contains("old.rego:3:"), "{err}");
    }

    #[test]
    fn unknown_builtin_is_reported_at_load_time() {
        let err = Pack::from_sources(
            "p",
            &src(
                "u.rego",
                "package p\n\nallow if {\n  crypto.nonsense(\"x\")\n}\n",
            ),
        )
        .expect_err("unknown builtin");
        match err {
            PolicyError::UnknownFunction {
                name,
                line,
                col,
                file,
            } => {
                assert_eq!(name, "crypto.nonsense");
                assert_eq!(line, 4);
                assert_eq!(col, 3);
                assert_eq!(file, "u.rego");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn local_imported_and_builtin_calls_are_accepted() {
        let sources = vec![
            (
                "lib.rego".to_owned(),
                "package lib\n\ndouble(x) := x * 2\n".to_owned(),
            ),
            (
                "main.rego".to_owned(),
                "package main\n\nimport data.lib\n\ninc(x) := x + 1\n\nv := lib.double(inc(count([1])))\n\nw := data.lib.double(1)\n\ns := sprintf(\"%d\", [1])\n".to_owned(),
            ),
        ];
        let pack = Pack::from_sources("p", &sources).expect("loads");
        assert_eq!(pack.namespaces(), ["lib", "main"]);
    }

    #[test]
    fn call_to_undefined_data_function_is_rejected() {
        let err = Pack::from_sources("p", &src("m.rego", "package m\n\nv := data.nowhere.f(1)\n"))
            .expect_err("undefined");
        assert!(matches!(err, PolicyError::UnknownFunction { .. }), "{err}");
    }

    #[test]
    fn input_json_errors_name_line_and_column() {
        let err = parse_input_json("{\n  \"a\": 1,\n  oops\n}").expect_err("bad json");
        assert!(err.contains("line 3"), "{err}");
        assert!(parse_input_json("{\"a\": [1, 2]}").is_ok());
    }
}
