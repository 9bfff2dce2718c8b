//! JSON Schema (a subset) → a graph of grammar nodes the byte automaton walks.
//!
//! Every node describes the set of JSON texts (compact: no whitespace except one optional space
//! after `:` and `,`) a value may take. Recursion (`$ref`) is a cycle in the graph, not in Rust.

use std::collections::HashMap;

use serde_json::Value;

use crate::error::{Error, Result};

pub(crate) type NodeId = u32;

/// Most digits (integer part and fraction together) a generated number may have. Keeps every number exact in an
/// `f64` and within `i64`, and keeps a model from emitting digits forever.
pub(crate) const MAX_INT_DIGITS: u8 = 15;
/// Largest magnitude a generated number can reach (exclusive).
pub(crate) const NUM_LIMIT: f64 = 1e15;
/// Literal sets are matched with a `u64` alive mask: at most this many per node.
pub(crate) const LITS_PER_NODE: usize = 64;

#[derive(Clone, Debug)]
pub(crate) enum Node {
    /// Any one of these (anyOf, oneOf, type lists, big enums, `$ref` indirection).
    Alt(Vec<NodeId>),
    /// Exactly one of these byte strings (enum, const, true/false/null); at most 64.
    Lits(Vec<Vec<u8>>),
    /// A string of `min..=max` characters (code points; an escape counts as one).
    Str {
        min: u32,
        max: u32,
    },
    Num(NumSpec),
    /// An object. With `props`: only those keys, in that order, required ones mandatory.
    /// Without: `free` is the schema of any key's value (`None`: only `{}`).
    Obj {
        props: Vec<Prop>,
        free: Option<NodeId>,
    },
    Arr {
        items: NodeId,
        min: u32,
        max: u32,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Prop {
    /// The key as JSON text, quotes included: `"name"`.
    pub key: Vec<u8>,
    pub value: NodeId,
    pub required: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct NumSpec {
    pub integer: bool,
    pub min: f64,
    pub max: f64,
    pub excl_min: bool,
    pub excl_max: bool,
}

impl NumSpec {
    /// Whether `v` satisfies the bounds.
    pub fn contains(&self, v: f64) -> bool {
        let lo_ok = if self.excl_min {
            v > self.min
        } else {
            v >= self.min
        };
        let hi_ok = if self.excl_max {
            v < self.max
        } else {
            v <= self.max
        };
        lo_ok && hi_ok
    }

    /// Whether some value in `[lo, hi)` (`hi_incl`: `[lo, hi]`) satisfies the bounds.
    pub fn meets(&self, lo: f64, hi: f64, hi_incl: bool) -> bool {
        let a = lo.max(self.min);
        let b = hi.min(self.max);
        if a < b {
            return true;
        }
        if a > b {
            return false;
        }
        // One point: in [lo, hi) and in the bounds.
        let in_range = a >= lo && (a < hi || (hi_incl && a == hi));
        in_range && self.contains(a)
    }

    /// Whether some value of sign `neg` with magnitude in `[lo, hi)` (or `[lo, hi]`) satisfies
    /// the bounds.
    pub fn meets_signed(&self, neg: bool, lo: f64, hi: f64, hi_incl: bool) -> bool {
        if !neg {
            return self.meets(lo, hi, hi_incl);
        }
        let mirrored = NumSpec {
            integer: self.integer,
            min: -self.max,
            max: -self.min,
            excl_min: self.excl_max,
            excl_max: self.excl_min,
        };
        mirrored.meets(lo, hi, hi_incl)
    }
}

/// The compiled schema: nodes plus the root.
#[derive(Debug)]
pub(crate) struct Grammar {
    pub nodes: Vec<Node>,
    pub root: NodeId,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(format!("json schema: {}", msg.into()))
}

/// Keywords that only annotate (or are handled elsewhere) and never constrain the output.
const IGNORED: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "definitions",
    "format",
    "readOnly",
    "writeOnly",
    "deprecated",
    "contentMediaType",
    "contentEncoding",
];

const SUPPORTED: &[&str] = &[
    "type",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
];

struct Compiler<'a> {
    root: &'a Value,
    nodes: Vec<Node>,
    refs: HashMap<String, NodeId>,
    any: Option<NodeId>,
    depth: usize,
}

pub(crate) fn compile(schema: &Value) -> Result<Grammar> {
    let mut c = Compiler {
        root: schema,
        nodes: Vec::new(),
        refs: HashMap::new(),
        any: None,
        depth: 0,
    };
    let root = c.compile(schema, "#")?;
    let g = Grammar {
        nodes: c.nodes,
        root,
    };
    check_alt_cycles(&g)?;
    Ok(g)
}

/// A cycle made only of `Alt` edges (`{"$ref": "#"}` at the root, `A → B → A`) would let the
/// automaton expand alternatives forever without reading a byte.
fn check_alt_cycles(g: &Grammar) -> Result<()> {
    // 0 = unvisited, 1 = on stack, 2 = done.
    let mut mark = vec![0u8; g.nodes.len()];
    fn visit(g: &Grammar, n: NodeId, mark: &mut [u8]) -> bool {
        match mark[n as usize] {
            1 => return false,
            2 => return true,
            _ => {}
        }
        mark[n as usize] = 1;
        if let Node::Alt(alts) = &g.nodes[n as usize] {
            for &a in alts {
                if !visit(g, a, mark) {
                    return false;
                }
            }
        }
        mark[n as usize] = 2;
        true
    }
    for n in 0..g.nodes.len() as NodeId {
        if !visit(g, n, &mut mark) {
            return Err(bad(
                "a $ref cycle that never produces a value (e.g. a schema that is only a reference to itself)",
            ));
        }
    }
    Ok(())
}

impl Compiler<'_> {
    fn push(&mut self, n: Node) -> NodeId {
        self.nodes.push(n);
        (self.nodes.len() - 1) as NodeId
    }

    fn any(&mut self) -> NodeId {
        if let Some(a) = self.any {
            return a;
        }
        // Reserve the id first: the object and array alternatives refer back to it.
        let any = self.push(Node::Alt(Vec::new()));
        self.any = Some(any);
        let obj = self.push(Node::Obj {
            props: Vec::new(),
            free: Some(any),
        });
        let arr = self.push(Node::Arr {
            items: any,
            min: 0,
            max: u32::MAX,
        });
        let s = self.push(Node::Str {
            min: 0,
            max: u32::MAX,
        });
        let num = self.push(Node::Num(NumSpec {
            integer: false,
            min: f64::NEG_INFINITY,
            max: f64::INFINITY,
            excl_min: false,
            excl_max: false,
        }));
        let lits = self.push(Node::Lits(vec![
            b"true".to_vec(),
            b"false".to_vec(),
            b"null".to_vec(),
        ]));
        self.nodes[any as usize] = Node::Alt(vec![obj, arr, s, num, lits]);
        any
    }

    fn lits(&mut self, values: &[Value]) -> Result<NodeId> {
        if values.is_empty() {
            return Err(bad("'enum' must not be empty"));
        }
        let mut texts: Vec<Vec<u8>> = Vec::new();
        for v in values {
            let t = serde_json::to_vec(v).map_err(|e| bad(format!("enum value: {e}")))?;
            if !texts.contains(&t) {
                texts.push(t);
            }
        }
        Ok(self.lit_texts(texts))
    }

    /// Literal texts as 64-wide literal nodes (one, or an `Alt` of several).
    fn lit_texts(&mut self, texts: Vec<Vec<u8>>) -> NodeId {
        let chunks: Vec<NodeId> = texts
            .chunks(LITS_PER_NODE)
            .map(|c| self.push(Node::Lits(c.to_vec())))
            .collect::<Vec<_>>();
        if chunks.len() == 1 {
            chunks[0]
        } else {
            self.push(Node::Alt(chunks))
        }
    }

    fn compile(&mut self, s: &Value, path: &str) -> Result<NodeId> {
        self.depth += 1;
        if self.depth > 64 {
            return Err(bad(format!("{path}: schema nested too deeply")));
        }
        let r = self.compile_inner(s, path);
        self.depth -= 1;
        r
    }

    fn compile_inner(&mut self, s: &Value, path: &str) -> Result<NodeId> {
        let obj = match s {
            Value::Bool(true) => return Ok(self.any()),
            Value::Bool(false) => {
                return Err(bad(format!("{path}: schema 'false' admits no value")));
            }
            Value::Object(o) => o,
            _ => {
                return Err(bad(format!(
                    "{path}: a schema must be an object or a boolean"
                )));
            }
        };
        for k in obj.keys() {
            if !IGNORED.contains(&k.as_str()) && !SUPPORTED.contains(&k.as_str()) {
                return Err(bad(format!("{path}: unsupported keyword '{k}'")));
            }
        }
        let constraining: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| SUPPORTED.contains(k))
            .collect();
        let alone = |kw: &str| -> Result<()> {
            if constraining.len() > 1 {
                return Err(bad(format!(
                    "{path}: '{kw}' combined with other keywords ({}) is not supported",
                    constraining.join(", ")
                )));
            }
            Ok(())
        };

        if let Some(r) = obj.get("$ref") {
            alone("$ref")?;
            let r = r
                .as_str()
                .ok_or_else(|| bad(format!("{path}: '$ref' must be a string")))?;
            return self.reference(r, path);
        }
        if let Some(v) = obj.get("const") {
            alone("const")?;
            return self.lits(std::slice::from_ref(v));
        }
        if let Some(v) = obj.get("enum") {
            alone("enum")?;
            let vals = v
                .as_array()
                .ok_or_else(|| bad(format!("{path}: 'enum' must be an array")))?;
            return self.lits(vals);
        }
        for kw in ["anyOf", "oneOf", "allOf"] {
            let Some(v) = obj.get(kw) else { continue };
            alone(kw)?;
            let list = v
                .as_array()
                .filter(|l| !l.is_empty())
                .ok_or_else(|| bad(format!("{path}: '{kw}' must be a non-empty array")))?;
            if kw == "allOf" {
                if list.len() != 1 {
                    return Err(bad(format!(
                        "{path}: 'allOf' with more than one schema is not supported"
                    )));
                }
                return self.compile(&list[0], &format!("{path}/allOf/0"));
            }
            let alts = list
                .iter()
                .enumerate()
                .map(|(i, sub)| self.compile(sub, &format!("{path}/{kw}/{i}")))
                .collect::<Result<Vec<_>>>()?;
            // Alternatives that are all literals (`anyOf` of `const`s): one literal set, so
            // they are matched together instead of as one thread each.
            if alts.len() > 1
                && alts
                    .iter()
                    .all(|&a| matches!(self.nodes[a as usize], Node::Lits(_)))
            {
                let mut texts: Vec<Vec<u8>> = Vec::new();
                for &a in &alts {
                    if let Node::Lits(l) = &self.nodes[a as usize] {
                        for t in l {
                            if !texts.contains(t) {
                                texts.push(t.clone());
                            }
                        }
                    }
                }
                return Ok(self.lit_texts(texts));
            }
            return Ok(if alts.len() == 1 {
                alts[0]
            } else {
                self.push(Node::Alt(alts))
            });
        }

        let types: Vec<&str> = match obj.get("type") {
            None => {
                if obj.contains_key("properties") || obj.contains_key("additionalProperties") {
                    vec!["object"]
                } else if obj.contains_key("items") {
                    vec!["array"]
                } else if constraining.is_empty() {
                    return Ok(self.any());
                } else {
                    return Err(bad(format!(
                        "{path}: give a 'type' for keywords {}",
                        constraining.join(", ")
                    )));
                }
            }
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) if !ts.is_empty() => ts
                .iter()
                .map(|t| {
                    t.as_str()
                        .ok_or_else(|| bad(format!("{path}: 'type' entries must be strings")))
                })
                .collect::<Result<_>>()?,
            Some(_) => {
                return Err(bad(format!(
                    "{path}: 'type' must be a string or a non-empty array of strings"
                )));
            }
        };
        let mut alts = Vec::new();
        for t in types {
            let n = self.typed(t, obj, path)?;
            if !alts.contains(&n) {
                alts.push(n);
            }
        }
        Ok(if alts.len() == 1 {
            alts[0]
        } else {
            self.push(Node::Alt(alts))
        })
    }

    fn reference(&mut self, r: &str, path: &str) -> Result<NodeId> {
        if let Some(&id) = self.refs.get(r) {
            return Ok(id);
        }
        let pointer = r.strip_prefix('#').ok_or_else(|| {
            bad(format!(
                "{path}: only local references ('#/...') are supported, not '{r}'"
            ))
        })?;
        let pointer = pointer.replace("%25", "%").replace("%22", "\"");
        let target = self
            .root
            .pointer(&pointer)
            .ok_or_else(|| bad(format!("{path}: '$ref' target '{r}' not found")))?;
        // Reserve the id before compiling the target so recursive references resolve.
        let id = self.push(Node::Alt(Vec::new()));
        self.refs.insert(r.to_string(), id);
        let inner = self.compile(target, r)?;
        self.nodes[id as usize] = Node::Alt(vec![inner]);
        Ok(id)
    }

    fn typed(
        &mut self,
        t: &str,
        obj: &serde_json::Map<String, Value>,
        path: &str,
    ) -> Result<NodeId> {
        let uint = |kw: &str| -> Result<Option<u32>> {
            match obj.get(kw) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(|n| Some(n.min(u32::MAX as u64) as u32))
                    .ok_or_else(|| bad(format!("{path}: '{kw}' must be a non-negative integer"))),
            }
        };
        match t {
            "null" => Ok(self.push(Node::Lits(vec![b"null".to_vec()]))),
            "boolean" => Ok(self.push(Node::Lits(vec![b"true".to_vec(), b"false".to_vec()]))),
            "string" => {
                let min = uint("minLength")?.unwrap_or(0);
                let max = uint("maxLength")?.unwrap_or(u32::MAX);
                if min > max {
                    return Err(bad(format!("{path}: minLength > maxLength")));
                }
                Ok(self.push(Node::Str { min, max }))
            }
            "integer" | "number" => self.number(t == "integer", obj, path),
            "array" => {
                let min = uint("minItems")?.unwrap_or(0);
                let max = uint("maxItems")?.unwrap_or(u32::MAX);
                if min > max {
                    return Err(bad(format!("{path}: minItems > maxItems")));
                }
                let items = match obj.get("items") {
                    None => self.any(),
                    Some(Value::Bool(false)) => {
                        if min > 0 {
                            return Err(bad(format!(
                                "{path}: 'items: false' with minItems > 0 admits no value"
                            )));
                        }
                        let any = self.any();
                        return Ok(self.push(Node::Arr {
                            items: any,
                            min: 0,
                            max: 0,
                        }));
                    }
                    Some(Value::Array(_)) => {
                        return Err(bad(format!(
                            "{path}: tuple 'items' (an array of schemas) is not supported"
                        )));
                    }
                    Some(s) => self.compile(s, &format!("{path}/items"))?,
                };
                Ok(self.push(Node::Arr { items, min, max }))
            }
            "object" => {
                let mut props = Vec::new();
                let required: Vec<&str> = match obj.get("required") {
                    None => Vec::new(),
                    Some(Value::Array(r)) => r
                        .iter()
                        .map(|k| {
                            k.as_str().ok_or_else(|| {
                                bad(format!("{path}: 'required' entries must be strings"))
                            })
                        })
                        .collect::<Result<_>>()?,
                    Some(_) => return Err(bad(format!("{path}: 'required' must be an array"))),
                };
                if let Some(p) = obj.get("properties") {
                    let p = p
                        .as_object()
                        .ok_or_else(|| bad(format!("{path}: 'properties' must be an object")))?;
                    for (k, sub) in p {
                        let value = self.compile(sub, &format!("{path}/properties/{k}"))?;
                        props.push(Prop {
                            key: serde_json::to_vec(k).expect("a string serializes"),
                            value,
                            required: required.contains(&k.as_str()),
                        });
                    }
                }
                // Required keys without a schema of their own take any value.
                for &r in &required {
                    let key = serde_json::to_vec(r).expect("a string serializes");
                    if !props.iter().any(|p| p.key == key) {
                        let value = self.any();
                        props.push(Prop {
                            key,
                            value,
                            required: true,
                        });
                    }
                }
                // With properties, only those are generated: valid whatever
                // additionalProperties says. Without, additionalProperties decides.
                let free = if props.is_empty() {
                    match obj.get("additionalProperties") {
                        None | Some(Value::Bool(true)) => Some(self.any()),
                        Some(Value::Bool(false)) => None,
                        Some(s) => Some(self.compile(s, &format!("{path}/additionalProperties"))?),
                    }
                } else {
                    None
                };
                Ok(self.push(Node::Obj { props, free }))
            }
            other => Err(bad(format!("{path}: unknown type '{other}'"))),
        }
    }

    fn number(
        &mut self,
        integer: bool,
        obj: &serde_json::Map<String, Value>,
        path: &str,
    ) -> Result<NodeId> {
        let num = |kw: &str| -> Result<Option<&Value>> {
            match obj.get(kw) {
                None => Ok(None),
                Some(v @ Value::Number(_)) => Ok(Some(v)),
                Some(v @ Value::Bool(_)) if kw.starts_with("exclusive") => Ok(Some(v)),
                Some(_) => Err(bad(format!("{path}: '{kw}' must be a number"))),
            }
        };
        let mut spec = NumSpec {
            integer,
            min: -NUM_LIMIT,
            max: NUM_LIMIT,
            excl_min: true,
            excl_max: true,
        };
        let tighten_min = |spec: &mut NumSpec, v: f64, excl: bool| {
            if v > spec.min || (v == spec.min && excl) {
                spec.min = v;
                spec.excl_min = excl;
            }
        };
        let tighten_max = |spec: &mut NumSpec, v: f64, excl: bool| {
            if v < spec.max || (v == spec.max && excl) {
                spec.max = v;
                spec.excl_max = excl;
            }
        };
        // Draft 4 form: boolean exclusiveMinimum/Maximum modify minimum/maximum.
        let excl_flag = |kw: &str| matches!(obj.get(kw), Some(Value::Bool(true)));
        if let Some(v) = num("minimum")? {
            tighten_min(
                &mut spec,
                v.as_f64().unwrap_or(0.0),
                excl_flag("exclusiveMinimum"),
            );
        }
        if let Some(v) = num("maximum")? {
            tighten_max(
                &mut spec,
                v.as_f64().unwrap_or(0.0),
                excl_flag("exclusiveMaximum"),
            );
        }
        if let Some(Value::Number(v)) = num("exclusiveMinimum")? {
            tighten_min(&mut spec, v.as_f64().unwrap_or(0.0), true);
        }
        if let Some(Value::Number(v)) = num("exclusiveMaximum")? {
            tighten_max(&mut spec, v.as_f64().unwrap_or(0.0), true);
        }
        if integer {
            // Integer bounds, inclusive.
            let lo = if spec.excl_min && spec.min.fract() == 0.0 {
                spec.min + 1.0
            } else {
                spec.min.ceil()
            };
            let hi = if spec.excl_max && spec.max.fract() == 0.0 {
                spec.max - 1.0
            } else {
                spec.max.floor()
            };
            spec.min = lo;
            spec.max = hi;
            spec.excl_min = false;
            spec.excl_max = false;
            if lo > hi {
                return Err(bad(format!("{path}: no integer satisfies the bounds")));
            }
        } else if spec.min > spec.max || (spec.min == spec.max && (spec.excl_min || spec.excl_max))
        {
            return Err(bad(format!("{path}: no number satisfies the bounds")));
        }
        Ok(self.push(Node::Num(spec)))
    }
}
