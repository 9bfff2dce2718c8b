//! Memory budget of one chat-template render.
//!
//! minijinja's fuel counts instructions, not bytes: `{% set ns.x = ns.x ~ ns.x %}` in a
//! 60-step loop asks for 2⁶⁰ bytes in a few dozen instructions, a raw-text block emitted in a
//! loop writes gigabytes, `'a'|indent(10**12)` or `'%999999999999s'|format(x)` reserve terabytes in
//! one call, and nested lists hundreds of thousands deep overflow the stack when printed or
//! dropped. A chat template comes from a downloaded GGUF, so every render here has a budget:
//!
//! - every value an operator, filter or method makes is at most [`MAX_VALUE_BYTES`] long (a
//!   sequence at most [`MAX_ITEMS`] items, nested at most [`MAX_DEPTH`] deep), checked *before*
//!   the work where the size can be computed and on the result otherwise;
//! - everything written (output and captures, raw text included) totals at most
//!   [`MAX_OUTPUT_BYTES`].
//!
//! The compiled instructions are rewritten so `~`, `+`, `*`, `%` and list/map building go
//! through the checks below, and raw text is emitted through the formatter, which counts
//! bytes. Real prompts are far below the limits (128K tokens of text ≈ 0.5 MB).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use minijinja::machinery::{Instruction, Instructions, ast};
use std::sync::Arc;

use minijinja::filters;
use minijinja::value::{Kwargs, Rest, StringInput, ValueKind, ValueOrKwargs};
use minijinja::{Environment, ErrorKind, State, Value};

/// Largest string a render may build. A real prompt is far smaller.
pub(super) const MAX_VALUE_BYTES: usize = 16 << 20;
/// Most items of a sequence a render may build (`range` stops at 100 000 too).
pub(super) const MAX_ITEMS: usize = 1 << 17;
/// Deepest nesting of lists and maps a render may build or print.
pub(super) const MAX_DEPTH: usize = 128;
/// Most bytes one render may write, captures (`{% set x %}…`, macro bodies) included.
pub(super) const MAX_OUTPUT_BYTES: usize = 64 << 20;

type JResult<T> = std::result::Result<T, minijinja::Error>;

fn too_big(what: &str) -> minijinja::Error {
    minijinja::Error::new(
        ErrorKind::InvalidOperation,
        format!("the chat template {what}; {BUDGET_MARK}"),
    )
}

// ---------------------------------------------------------------------------------------------
// Sizes

/// The bytes `value` prints as (strings their length, other items 8 each, so an estimate for
/// numbers), or `None` once that passes `budget` or nesting passes [`MAX_DEPTH`]. The walk
/// stops as soon as the budget is spent, so it is cheap on hostile values.
pub(super) fn printed_size(value: &Value, budget: usize) -> Option<usize> {
    fn walk(v: &Value, left: &mut usize, depth: usize) -> bool {
        let cost = 8 + v.as_str().map_or(0, str::len);
        if cost > *left || depth > MAX_DEPTH {
            return false;
        }
        *left -= cost;
        let is_map = v.kind() == ValueKind::Map;
        match v.kind() {
            ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => match v.try_iter() {
                Ok(items) => items.into_iter().all(|x| {
                    let child = if is_map {
                        v.get_item(&x).unwrap_or_default()
                    } else {
                        x
                    };
                    walk(&child, left, depth + 1)
                }),
                Err(_) => true,
            },
            _ => true,
        }
    }
    let mut left = budget;
    walk(value, &mut left, 0).then(|| budget - left)
}

/// An error unless `value` prints in about [`MAX_VALUE_BYTES`] (see [`printed_size`]).
pub(super) fn check_printable(value: &Value) -> JResult<()> {
    match printed_size(value, MAX_VALUE_BYTES) {
        Some(_) => Ok(()),
        None => Err(too_big(&format!(
            "printed a value of over {MAX_VALUE_BYTES} bytes or nested over {MAX_DEPTH} deep"
        ))),
    }
}

/// Items of a sized sequence (the characters of a string), if it has a length.
fn item_count(v: &Value) -> Option<usize> {
    match v.kind() {
        ValueKind::String => v.as_str().map(|s| s.chars().count()),
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => v.len(),
        _ => None,
    }
}

/// `value` if it is within the value limits, else an error: the check on every result.
pub(super) fn bounded(value: Value) -> JResult<Value> {
    if let Some(s) = value.as_str() {
        if s.len() > MAX_VALUE_BYTES {
            return Err(too_big(&format!(
                "built a string of {} bytes (over {MAX_VALUE_BYTES})",
                s.len()
            )));
        }
    } else if matches!(value.kind(), ValueKind::Seq | ValueKind::Map) {
        if value.len().is_some_and(|n| n > MAX_ITEMS) {
            return Err(too_big(&format!(
                "built a sequence of over {MAX_ITEMS} items"
            )));
        }
        check_depth(&value)?;
    }
    Ok(value)
}

/// Nesting of `v` is within [`MAX_DEPTH`]. Walks only the first item of each level: a list
/// gains depth one level per build, and each level was checked when it was built, so a deep
/// value is found at its newest level.
fn check_depth(v: &Value) -> JResult<()> {
    let mut cur = v.clone();
    for _ in 0..=MAX_DEPTH {
        let next = match cur.kind() {
            ValueKind::Seq | ValueKind::Map => {
                let Ok(mut items) = cur.try_iter() else {
                    return Ok(());
                };
                let is_map = cur.kind() == ValueKind::Map;
                // The deepest child is what matters; checking every child would be quadratic
                // over repeated builds, so each level looks at its containers only.
                let Some(child) = items.find_map(|x| {
                    let c = if is_map {
                        cur.get_item(&x).unwrap_or_default()
                    } else {
                        x
                    };
                    matches!(c.kind(), ValueKind::Seq | ValueKind::Map).then_some(c)
                }) else {
                    return Ok(());
                };
                child
            }
            _ => return Ok(()),
        };
        cur = next;
    }
    Err(too_big(&format!("nested values over {MAX_DEPTH} deep")))
}

fn check_len(bytes: Option<usize>, what: &str) -> JResult<()> {
    match bytes {
        Some(n) if n <= MAX_VALUE_BYTES => Ok(()),
        _ => Err(too_big(&format!(
            "would build {what} of over {MAX_VALUE_BYTES} bytes"
        ))),
    }
}

fn check_items(items: Option<usize>, what: &str) -> JResult<()> {
    match items {
        Some(n) if n <= MAX_ITEMS => Ok(()),
        _ => Err(too_big(&format!(
            "would build {what} of over {MAX_ITEMS} items"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Output: everything written goes through the formatter, which counts it here.

thread_local! {
    static WRITTEN: Cell<usize> = const { Cell::new(0) };
}

/// Counts `bytes` more written by the render on this thread; an error past the budget.
pub(super) fn count_output(bytes: usize) -> JResult<()> {
    WRITTEN.with(|w| {
        let total = w.get().saturating_add(bytes);
        w.set(total);
        if total > MAX_OUTPUT_BYTES {
            Err(too_big(&format!("wrote over {MAX_OUTPUT_BYTES} bytes")))
        } else {
            Ok(())
        }
    })
}

fn reset_output() {
    WRITTEN.with(|w| w.set(0));
}

// ---------------------------------------------------------------------------------------------
// Operators. Each checks sizes it can compute, then runs minijinja's own operator (so the
// semantics are exactly minijinja's), then checks the result.

const CONCAT: &str = "~concat";
const ADD: &str = "~add";
const MUL: &str = "~mul";
const REM: &str = "~rem";
const CHECK: &str = "~check";

/// A tiny environment that evaluates minijinja's own operators for the checked functions.
static OPS: LazyLock<Environment<'static>> = LazyLock::new(Environment::new);
static OP_EXPRS: LazyLock<[minijinja::Expression<'static, 'static>; 3]> = LazyLock::new(|| {
    ["a + b", "a * b", "a % b"].map(|e| OPS.compile_expression(e).expect("operator expression"))
});

fn builtin_op(index: usize, a: Value, b: Value) -> JResult<Value> {
    OP_EXPRS[index].eval(Value::from_pairs([("a", a), ("b", b)]))
}

/// `v` as an `i64` if it is an integer (not a float, not a bool): the operators' fast path.
fn int(v: &Value) -> Option<i64> {
    (v.is_integer() && v.kind() == ValueKind::Number)
        .then(|| v.as_i64())
        .flatten()
}

fn concat(a: Value, b: Value) -> JResult<Value> {
    let size = |v: &Value| printed_size(v, MAX_VALUE_BYTES);
    check_len(size(&a).and_then(|x| size(&b).map(|y| x + y)), "a string")?;
    Ok(Value::from(format!("{a}{b}")))
}

fn add(a: Value, b: Value) -> JResult<Value> {
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        check_len(Some(x.len() + y.len()), "a string")?;
        return Ok(Value::from(format!("{x}{y}")));
    }
    if let (Some(x), Some(y)) = (int(&a), int(&b)) {
        if let Some(s) = x.checked_add(y) {
            return Ok(Value::from(s));
        }
    }
    let seq = |v: &Value| matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable);
    if seq(&a) && seq(&b) {
        check_items(a.len().and_then(|x| b.len().map(|y| x + y)), "a sequence")?;
    }
    bounded(builtin_op(0, a, b)?)
}

fn mul(a: Value, b: Value) -> JResult<Value> {
    if let (Some(x), Some(y)) = (int(&a), int(&b)) {
        if let Some(p) = x.checked_mul(y) {
            return Ok(Value::from(p));
        }
    }
    let times = |v: &Value| v.as_i64().map(|n| n.max(0) as usize);
    for (s, n) in [(&a, &b), (&b, &a)] {
        let Some(n) = times(n) else { continue };
        if let Some(text) = s.as_str() {
            check_len(text.len().checked_mul(n), "a string")?;
        } else if matches!(s.kind(), ValueKind::Seq | ValueKind::Iterable) {
            check_items(s.len().and_then(|l| l.checked_mul(n)), "a sequence")?;
        }
    }
    bounded(builtin_op(1, a, b)?)
}

fn rem(a: Value, b: Value) -> JResult<Value> {
    if let (Some(x), Some(y)) = (int(&a), int(&b)) {
        if y > 0 && x >= 0 {
            return Ok(Value::from(x % y));
        }
    }
    // minijinja has no `str % args` formatting: the operator is numeric only.
    bounded(builtin_op(2, a, b)?)
}

/// A value made by list/map building or a call: within the limits (depth included).
fn check(v: Value) -> JResult<Value> {
    bounded(v)
}

/// An upper bound on what `fmt` formats `args` to must fit: the format text, every width and
/// precision in its `%…` and `{…}` specs, and the printed arguments, each counted twice (digit
/// grouping, escapes). `*` widths come from arguments and are refused.
fn check_format(fmt: &str, args: &[Value]) -> JResult<()> {
    let mut total = fmt.len();
    for spec in format_specs(fmt) {
        if spec.contains('*') {
            return Err(too_big("used a '*' width in a format string"));
        }
        for run in spec.split(|c: char| !c.is_ascii_digit()) {
            if run.is_empty() {
                continue;
            }
            let n: usize = run.parse().unwrap_or(usize::MAX);
            total = total.saturating_add(n).saturating_add(64);
        }
    }
    for a in args {
        let printed = printed_size(a, MAX_VALUE_BYTES).unwrap_or(usize::MAX);
        total = total.saturating_add(printed);
    }
    check_len(total.checked_mul(2), "a formatted string")
}

/// The `%…` conversion specs and `{…}` fields of a format string (printf or `str.format`).
fn format_specs(fmt: &str) -> Vec<&str> {
    let b = fmt.as_bytes();
    let mut specs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && !b[j].is_ascii_alphabetic() && b[j] != b'%' {
                    j += 1;
                }
                specs.push(&fmt[start..j]);
                i = j + 1;
            }
            b'{' if b.get(i + 1) == Some(&b'{') => i += 2,
            b'{' => {
                let start = i + 1;
                let end = fmt[start..].find('}').map_or(b.len(), |e| start + e);
                specs.push(&fmt[start..end]);
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    specs
}

// ---------------------------------------------------------------------------------------------
// Filters and Python methods that can grow a value: checked before, bounded after.

fn replace_size(s: &str, from: &str, to: &str, count: Option<usize>) -> Option<usize> {
    let hits = if from.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(from).count()
    };
    let hits = count.map_or(hits, |c| c.min(hits));
    s.len().checked_add(hits.checked_mul(to.len())?)
}

fn join_size(items: &Value, sep: &str) -> Option<usize> {
    let n = items.len().unwrap_or(0);
    let printed = printed_size(items, MAX_VALUE_BYTES)?;
    printed.checked_add(n.checked_mul(sep.len())?)
}

/// Registers the checked operators and filters on `env` (the builtins of the same names are
/// replaced by checked wrappers around them).
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_function(CONCAT, concat);
    env.add_function(ADD, add);
    env.add_function(MUL, mul);
    env.add_function(REM, rem);
    env.add_function(CHECK, check);
    env.add_filter("replace", replace_filter);
    env.add_filter("join", join_filter);
    env.add_filter("indent", indent_filter);
    env.add_filter("format", format_filter);
    env.add_filter("batch", batch_filter);
    env.add_filter("slice", slice_filter);
    env.add_filter("sum", sum_filter);
    env.add_filter("chain", chain_filter);
    env.add_filter("list", list_filter);
    env.add_filter("split", split_filter);
    env.add_filter("lines", lines_filter);
    env.add_filter("pprint", pprint_filter);
}

fn replace_filter(
    state: &mut State,
    v: StringInput<'_>,
    from: StringInput<'_>,
    to: StringInput<'_>,
) -> JResult<Value> {
    let size = replace_size(v.as_str(), from.as_str(), to.as_str(), None);
    check_len(size, "a string")?;
    bounded(filters::replace(state, v, from, to)?)
}

fn join_filter(
    state: &mut State,
    v: &Value,
    sep: Option<StringInput<'_>>,
    attribute: Option<&str>,
    kwargs: Kwargs,
) -> JResult<Value> {
    let sep_str = sep.as_ref().map_or("", |s| s.as_str());
    check_len(join_size(v, sep_str), "a joined string")?;
    bounded(filters::join(state, v, sep, attribute, kwargs)?)
}

fn indent_filter(
    v: StringInput<'_>,
    width: Option<usize>,
    first: Option<bool>,
    blank: Option<bool>,
    kwargs: Kwargs,
) -> JResult<Value> {
    let w = match width {
        Some(w) => w,
        None => kwargs.peek::<Option<usize>>("width")?.unwrap_or(4),
    };
    let s = v.as_str();
    let lines = s.lines().count() + 1;
    let size = lines.checked_mul(w).and_then(|x| x.checked_add(s.len()));
    check_len(size, "an indented string")?;
    bounded(filters::indent(v, width, first, blank, kwargs)?)
}

fn format_filter(state: &mut State, fmt: &Value, args: Rest<ValueOrKwargs>) -> JResult<Value> {
    if let Some(s) = fmt.as_str() {
        let values: Vec<Value> = args.iter().map(|a| Value::clone(a)).collect();
        check_format(s, &values)?;
    }
    bounded(filters::format(state, fmt, args)?)
}

fn batch_filter(state: &State, v: Value, count: usize, fill: Option<Value>) -> JResult<Value> {
    check_items(Some(count), "a batch")?;
    bounded(filters::batch(state, v, count, fill)?)
}

fn slice_filter(state: &State, v: Value, count: usize, fill: Option<Value>) -> JResult<Value> {
    check_items(Some(count), "a list of slices")?;
    bounded(filters::slice(state, v, count, fill)?)
}

fn sum_filter(
    state: &State,
    v: Value,
    attribute: Option<&str>,
    start: Option<Value>,
    kwargs: Kwargs,
) -> JResult<Value> {
    check_printable(&v)?;
    bounded(filters::sum(state, v, attribute, start, kwargs)?)
}

fn chain_filter(state: &State, v: Value, others: Rest<Value>) -> JResult<Value> {
    let total = others.iter().try_fold(v.len().unwrap_or(0), |t, o| {
        t.checked_add(o.len().unwrap_or(0))
    });
    check_items(total, "a chained sequence")?;
    bounded(filters::chain(state, v, others)?)
}

fn list_filter(state: &State, v: Value) -> JResult<Value> {
    check_items(item_count(&v).or(Some(0)), "a list")?;
    bounded(filters::list(state, v)?)
}

fn split_filter(v: &Value, sep: Option<Arc<str>>, maxsplits: Option<i64>) -> JResult<Value> {
    if let Some(s) = v.as_str() {
        let parts = match sep.as_deref() {
            Some(p) if !p.is_empty() => s.matches(p).count() + 1,
            _ => s.len() / 2 + 1,
        };
        check_items(Some(parts), "a split list")?;
    }
    bounded(filters::split(v, sep, maxsplits)?)
}

fn lines_filter(v: &Value) -> JResult<Value> {
    if let Some(s) = v.as_str() {
        check_items(Some(s.lines().count()), "a list of lines")?;
    }
    bounded(filters::lines(v)?)
}

fn pprint_filter(v: &Value) -> JResult<Value> {
    check_printable(v)?;
    bounded(Value::from(filters::pprint(v)))
}

/// Size checks before the Python (pycompat) string methods that can grow a value.
pub(super) fn check_method(value: &Value, method: &str, args: &[Value]) -> JResult<()> {
    let Some(s) = value.as_str() else {
        return Ok(());
    };
    let arg_str = |i: usize| args.get(i).and_then(Value::as_str);
    match method {
        "replace" => {
            if let (Some(a), Some(b)) = (arg_str(0), arg_str(1)) {
                let count = args
                    .get(2)
                    .and_then(Value::as_i64)
                    .and_then(|c| usize::try_from(c).ok());
                check_len(replace_size(s, a, b, count), "a string")?;
            }
        }
        "join" => {
            if let Some(items) = args.first() {
                check_len(join_size(items, s), "a joined string")?;
            }
        }
        "format" => check_format(s, args)?,
        "split" | "splitlines" => {
            let parts = match arg_str(0) {
                Some(p) if !p.is_empty() => s.matches(p).count() + 1,
                _ => s.len() / 2 + 1,
            };
            check_items(Some(parts), "a split list")?;
        }
        _ => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Instruction rewrite

/// The instructions of `old` with the budget checks in: `~ + * %` call the checked operators,
/// list/map/call results are checked, raw text is emitted through the formatter (which counts
/// it). Jump targets are remapped for the instructions that became two.
fn rewrite<'s>(old: &Instructions<'s>) -> Instructions<'s> {
    let mut n = 0u32;
    while old.get(n).is_some() {
        n += 1;
    }
    // new index of every old index (and of the end, a valid jump target)
    let mut at = Vec::with_capacity(n as usize + 1);
    let mut next = 0u32;
    for i in 0..n {
        at.push(next);
        next += expansion(old.get(i).expect("in range")).len() as u32;
    }
    at.push(next);
    let map = |t: u32| at.get(t as usize).copied().unwrap_or(t);
    let mut new = Instructions::new(old.name(), old.source());
    for i in 0..n {
        let line = old.get_line(i).and_then(|l| u16::try_from(l).ok());
        for instr in expansion(old.get(i).expect("in range")) {
            let instr = match instr {
                Instruction::Jump(t) => Instruction::Jump(map(t)),
                Instruction::JumpIfFalse(t) => Instruction::JumpIfFalse(map(t)),
                Instruction::JumpIfFalseOrPop(t) => Instruction::JumpIfFalseOrPop(map(t)),
                Instruction::JumpIfTrueOrPop(t) => Instruction::JumpIfTrueOrPop(map(t)),
                Instruction::Iterate(t) => Instruction::Iterate(map(t)),
                Instruction::BuildMacro(name, t, flags) => {
                    Instruction::BuildMacro(name, map(t), flags)
                }
                other => other,
            };
            match (old.get_span(i), line) {
                (Some(span), _) => new.add_with_span(instr, span),
                (None, Some(l)) => new.add_with_line(instr, l),
                (None, None) => new.add(instr),
            };
        }
    }
    new
}

/// What one instruction becomes (jump targets still old).
fn expansion<'s>(instr: &Instruction<'s>) -> Vec<Instruction<'s>> {
    let call = |name: &'static str| Instruction::CallFunction(name, Some(2));
    match instr {
        Instruction::StringConcat => vec![call(CONCAT)],
        Instruction::Add => vec![call(ADD)],
        Instruction::Mul => vec![call(MUL)],
        Instruction::Rem => vec![call(REM)],
        Instruction::EmitRaw(s) => vec![Instruction::LoadConst(Value::from(*s)), Instruction::Emit],
        Instruction::BuildList(_)
        | Instruction::BuildTuple(_)
        | Instruction::BuildMap(_)
        | Instruction::CallMethod(..)
        | Instruction::CallObject(_) => {
            vec![instr.clone(), Instruction::CallFunction(CHECK, Some(1))]
        }
        other => vec![other.clone()],
    }
}

// ---------------------------------------------------------------------------------------------
// Constant folding: minijinja evaluates constant expressions while it compiles, with its own
// unchecked operators (`{{ 57880*['x']*443 ~ ... }}` built ~230 MB before any instruction ran,
// found by fuzz/template). So before compiling, every constant sub-expression is evaluated
// bottom-up with the checked operators; one that would be too big fails the compile.

const BUDGET_MARK: &str = "a hostile or broken template";

fn is_budget_error(e: &minijinja::Error) -> bool {
    e.detail().is_some_and(|d| d.contains(BUDGET_MARK))
}

/// minijinja's operator `op` on constants, through an expression (`None` if it fails, as
/// folding does).
fn const_op(op: &str, a: Value, b: Value) -> Option<Value> {
    let src = format!("a {op} b");
    let expr = OPS.compile_expression(&src).ok()?;
    expr.eval(Value::from_pairs([("a", a), ("b", b)])).ok()
}

/// The constant value of `e` if minijinja would fold it; an error if building it breaks the
/// budget. Sub-expressions that are not constant are walked for constants of their own.
fn const_value(e: &ast::Expr<'_>) -> JResult<Option<Value>> {
    use ast::Expr as E;
    let all = |items: &[ast::Expr<'_>]| -> JResult<Option<Vec<Value>>> {
        let mut out = Vec::new();
        let mut constant = true;
        for it in items {
            match const_value(it)? {
                Some(v) if constant => out.push(v),
                _ => constant = false,
            }
        }
        Ok(constant.then_some(out))
    };
    Ok(match e {
        E::Const(c) => Some(c.value.clone()),
        E::List(l) => all(&l.items)?
            .map(|v| bounded(Value::from(v)))
            .transpose()?,
        E::Tuple(t) => all(&t.items)?
            .map(|v| bounded(Value::from(v)))
            .transpose()?,
        E::Map(m) => {
            let (k, v) = (all(&m.keys)?, all(&m.values)?);
            match (k, v) {
                (Some(k), Some(v)) => Some(bounded(k.into_iter().zip(v).collect::<Value>())?),
                _ => None,
            }
        }
        E::UnaryOp(u) => {
            let v = const_value(&u.expr)?;
            v.and_then(|v| match u.op {
                ast::UnaryOpKind::Not => Some(Value::from(!v.is_true())),
                ast::UnaryOpKind::Neg => OPS
                    .compile_expression("-a")
                    .ok()?
                    .eval(Value::from_pairs([("a", v)]))
                    .ok(),
            })
        }
        E::BinOp(b) => {
            let (l, r) = (const_value(&b.left)?, const_value(&b.right)?);
            let (Some(l), Some(r)) = (l, r) else {
                return Ok(None);
            };
            use ast::BinOpKind as K;
            let checked = |f: fn(Value, Value) -> JResult<Value>, l, r| match f(l, r) {
                Ok(v) => Ok(Some(v)),
                Err(e) if is_budget_error(&e) => Err(e),
                Err(_) => Ok(None),
            };
            match b.op {
                K::Add => checked(add, l, r)?,
                K::Mul => checked(mul, l, r)?,
                K::Concat => checked(concat, l, r)?,
                K::ScAnd => Some(if l.is_true() { r } else { l }),
                K::ScOr => Some(if l.is_true() { l } else { r }),
                op => {
                    let sym = match op {
                        K::Eq => "==",
                        K::Ne => "!=",
                        K::Lt => "<",
                        K::Lte => "<=",
                        K::Gt => ">",
                        K::Gte => ">=",
                        K::Sub => "-",
                        K::Div => "/",
                        K::FloorDiv => "//",
                        K::Rem => "%",
                        K::Pow => "**",
                        _ => "in",
                    };
                    const_op(sym, l, r)
                }
            }
        }
        E::Compare(c) => {
            walk_expr(&c.expr)?;
            for op in &c.ops {
                walk_expr(&op.expr)?;
            }
            None // small either way: a bool
        }
        E::Var(_) => None,
        E::Slice(x) => {
            walk_expr(&x.expr)?;
            for part in [&x.start, &x.stop, &x.step].into_iter().flatten() {
                walk_expr(part)?;
            }
            None
        }
        E::IfExpr(x) => {
            walk_expr(&x.test_expr)?;
            walk_expr(&x.true_expr)?;
            if let Some(f) = &x.false_expr {
                walk_expr(f)?;
            }
            None
        }
        E::Filter(f) => {
            if let Some(x) = &f.expr {
                walk_expr(x)?;
            }
            walk_args(&f.args)?;
            None
        }
        E::Test(t) => {
            walk_expr(&t.expr)?;
            walk_args(&t.args)?;
            None
        }
        E::GetAttr(g) => {
            walk_expr(&g.expr)?;
            None
        }
        E::GetItem(g) => {
            walk_expr(&g.expr)?;
            walk_expr(&g.subscript_expr)?;
            None
        }
        E::Call(c) => {
            walk_expr(&c.expr)?;
            walk_args(&c.args)?;
            None
        }
    })
}

fn walk_expr(e: &ast::Expr<'_>) -> JResult<()> {
    const_value(e).map(|_| ())
}

fn walk_args(args: &[ast::CallArg<'_>]) -> JResult<()> {
    for a in args {
        match a {
            ast::CallArg::Pos(e)
            | ast::CallArg::Kwarg(_, e)
            | ast::CallArg::PosSplat(e)
            | ast::CallArg::KwargSplat(e) => walk_expr(e)?,
        }
    }
    Ok(())
}

fn walk_body(body: &[ast::Stmt<'_>]) -> JResult<()> {
    body.iter().try_for_each(walk_stmt)
}

fn walk_macro(m: &ast::Macro<'_>) -> JResult<()> {
    m.args.iter().chain(&m.defaults).try_for_each(walk_expr)?;
    walk_body(&m.body)
}

fn walk_stmt(s: &ast::Stmt<'_>) -> JResult<()> {
    use ast::Stmt as S;
    match s {
        S::Template(t) => walk_body(&t.children),
        S::EmitExpr(e) => walk_expr(&e.expr),
        S::EmitRaw(_) | S::Continue(_) | S::Break(_) => Ok(()),
        S::ForLoop(f) => {
            walk_expr(&f.iter)?;
            if let Some(x) = &f.filter_expr {
                walk_expr(x)?;
            }
            walk_body(&f.body)?;
            walk_body(&f.else_body)
        }
        S::IfCond(i) => {
            walk_expr(&i.expr)?;
            walk_body(&i.true_body)?;
            walk_body(&i.false_body)
        }
        S::WithBlock(w) => {
            for (_, v) in &w.assignments {
                walk_expr(v)?;
            }
            walk_body(&w.body)
        }
        S::Set(x) => walk_expr(&x.expr),
        S::SetBlock(x) => {
            if let Some(f) = &x.filter {
                walk_expr(f)?;
            }
            walk_body(&x.body)
        }
        S::AutoEscape(a) => {
            walk_expr(&a.enabled)?;
            walk_body(&a.body)
        }
        S::FilterBlock(f) => {
            walk_expr(&f.filter)?;
            walk_body(&f.body)
        }
        S::Block(b) => walk_body(&b.body),
        S::Import(i) => walk_expr(&i.expr),
        S::FromImport(i) => walk_expr(&i.expr),
        S::Extends(x) => walk_expr(&x.name),
        S::Include(x) => walk_expr(&x.name),
        S::Macro(m) => walk_macro(m),
        S::CallBlock(c) => {
            walk_expr(&c.call.expr)?;
            walk_args(&c.call.args)?;
            walk_macro(&c.macro_decl)
        }
        S::Do(d) => {
            walk_expr(&d.call.expr)?;
            walk_args(&d.call.args)
        }
    }
}

/// A compiled template with the budget checks in, ready for [`render`].
pub(super) struct Checked<'s> {
    instructions: Instructions<'s>,
    blocks: BTreeMap<&'s str, Instructions<'s>>,
}

/// Compiles `source` (syntax of `env`'s templates) and rewrites it.
pub(super) fn compile<'s>(
    name: &'s str,
    source: &'s str,
    syntax: minijinja::syntax::SyntaxConfig,
) -> JResult<Checked<'s>> {
    let config = minijinja::machinery::TemplateConfig {
        syntax_config: syntax,
        default_auto_escape: std::sync::Arc::new(|_| minijinja::AutoEscape::None),
    };
    // Parse errors are left to the compile below, which reports them with their location.
    if let Ok(tree) = minijinja::machinery::parse(source, name, config.syntax_config.clone()) {
        walk_stmt(&tree)?;
    }
    let compiled = minijinja::machinery::CompiledTemplate::new(name, source, &config)?;
    Ok(Checked {
        instructions: rewrite(&compiled.instructions),
        blocks: compiled
            .blocks
            .iter()
            .map(|(k, v)| (*k, rewrite(v)))
            .collect(),
    })
}

/// Renders a [`Checked`] template with `ctx` on `env` (which [`register`] prepared), within
/// the budget.
pub(super) fn render<'s>(env: &'s Environment<'s>, t: &Checked<'s>, ctx: Value) -> JResult<String> {
    reset_output();
    let mut out = String::new();
    let result = minijinja::machinery::eval(
        env,
        &t.instructions,
        ctx,
        &t.blocks,
        &mut minijinja::machinery::make_string_output(&mut out),
        minijinja::AutoEscape::None,
    );
    reset_output();
    result.map(|_| out)
}
