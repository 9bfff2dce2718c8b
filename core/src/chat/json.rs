//! Python-compatible JSON text (`json.dumps` separators, key order, float repr), shared by the
//! template's `tojson` filter and the tool-call formatters.

use minijinja::value::ValueKind;
use minijinja::{ErrorKind, Value as JValue};
use serde_json::Value as Json;

/// `json.dumps` options of the `tojson` filter.
#[derive(Default)]
pub(super) struct JsonStyle {
    pub(super) indent: Option<usize>,
    pub(super) sort_keys: bool,
    pub(super) ensure_ascii: bool,
}

/// serde_json value -> template value, keeping object key order.
pub(super) fn json_to_value(v: &Json) -> JValue {
    match v {
        Json::Null => JValue::from(()),
        Json::Bool(b) => JValue::from(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                JValue::from(i)
            } else if let Some(u) = n.as_u64() {
                JValue::from(u)
            } else {
                JValue::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => JValue::from(s.as_str()),
        Json::Array(a) => a.iter().map(json_to_value).collect(),
        Json::Object(o) => {
            JValue::from_pairs(o.iter().map(|(k, v)| (k.as_str(), json_to_value(v))))
        }
    }
}

/// Python `json.dumps(v, ensure_ascii=False)` of a JSON value (separators `", "` / `": "`,
/// key order kept).
pub(crate) fn json_dumps(v: &Json) -> String {
    let mut out = String::new();
    // Conversion of plain JSON data cannot fail.
    let _ = write_json(&mut out, &json_to_value(v), &JsonStyle::default(), 0);
    out
}

pub(super) fn write_json(
    out: &mut String,
    v: &JValue,
    style: &JsonStyle,
    level: usize,
) -> std::result::Result<(), minijinja::Error> {
    if level > 256 {
        return Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            "tojson: value nested too deeply",
        ));
    }
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = style.indent {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', n * level));
        }
    };
    let item_sep = if style.indent.is_some() { "," } else { ", " };
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&py_number(v, true)),
        ValueKind::String => json_str(out, v.as_str().unwrap_or(""), style.ensure_ascii),
        ValueKind::Map => {
            let mut keys: Vec<JValue> = v.try_iter()?.collect();
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if style.sort_keys {
                keys.sort();
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                match k.kind() {
                    ValueKind::String => {
                        json_str(out, k.as_str().unwrap_or(""), style.ensure_ascii)
                    }
                    ValueKind::Bool | ValueKind::Number | ValueKind::None => {
                        out.push('"');
                        write_json(out, k, style, level + 1)?;
                        out.push('"');
                    }
                    _ => {
                        return Err(minijinja::Error::new(
                            ErrorKind::InvalidOperation,
                            "tojson: keys must be str, int, float, bool or None",
                        ));
                    }
                }
                out.push_str(": ");
                write_json(out, &v.get_item(k)?, style, level + 1)?;
            }
            newline(out, level);
            out.push('}');
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<JValue> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                write_json(out, it, style, level + 1)?;
            }
            newline(out, level);
            out.push(']');
        }
        _ => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: cannot serialize {}", v.kind()),
            ));
        }
    }
    Ok(())
}

pub(super) fn json_str(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && (c as u32) > 0x7e) => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A number as Python prints it (`repr`): ints as is, floats shortest round-trip with `.0` or
/// an exponent (`1e-05`, `1e+16`). `json` selects `NaN`/`Infinity` over `nan`/`inf`.
pub(super) fn py_number(v: &JValue, json: bool) -> String {
    if v.is_integer() {
        return v.to_string();
    }
    match f64::try_from(v.clone()) {
        Ok(f) => py_float(f, json),
        Err(_) => v.to_string(),
    }
}

pub(super) fn py_float(f: f64, json: bool) -> String {
    if f.is_nan() {
        return if json { "NaN" } else { "nan" }.into();
    }
    if f.is_infinite() {
        let s = if json { "Infinity" } else { "inf" };
        return if f < 0.0 { format!("-{s}") } else { s.into() };
    }
    let e = format!("{f:e}"); // shortest round-trip digits: "-1.2345e3"
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    }
    out
}
