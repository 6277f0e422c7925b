//! How a result reaches stdout: `--query` (JMESPath, through the `jmespath` crate, as the
//! aws CLI) and then `--output json|text`, where text follows the aws CLI's rules so that
//! scripts cutting its tab-separated lines keep working.

use serde_json::Value;
use std::fmt::Write;

/// Applies a JMESPath expression; a malformed one is the caller's mistake (a usage error).
pub fn query(v: &Value, expression: &str) -> Result<Value, String> {
    let expr = jmespath::compile(expression).map_err(|e| format!("Bad value for --query {expression}: {e}"))?;
    let found = expr.search(v).map_err(|e| format!("Bad value for --query {expression}: {e}"))?;
    serde_json::to_value(&*found).map_err(|e| e.to_string())
}

/// The aws CLI's text format: a dictionary's scalar members on one tab-separated line (in
/// key order, led by the upper-cased name of the member that holds it), then its lists
/// and dictionaries, each under its own name; the rows of a list of dictionaries share one
/// column set.
pub fn text(v: &Value) -> String {
    let mut out = String::new();
    item(v, None, None, &mut out);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        // As Python's str(): the aws CLI is written in it.
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn item(v: &Value, name: Option<&str>, columns: Option<&[String]>, out: &mut String) {
    match v {
        Value::Object(_) => dict(v, name, columns, out),
        Value::Array(items) => list(items, name, out),
        other => {
            let _ = writeln!(out, "{}", scalar(other));
        }
    }
}

fn list(items: &[Value], name: Option<&str>, out: &mut String) {
    if items.is_empty() {
        return;
    }
    if items.iter().any(Value::is_object) {
        let mut columns: Vec<String> = items
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|o| o.iter().filter(|(_, v)| is_scalar(v)).map(|(k, _)| k.clone()))
            .collect();
        columns.sort();
        columns.dedup();
        for it in items {
            item(it, name, Some(&columns), out);
        }
        return;
    }
    let (scalars, nested): (Vec<&Value>, Vec<&Value>) = items.iter().partition(|v| is_scalar(v));
    if !scalars.is_empty() {
        match name {
            Some(n) => scalars.iter().for_each(|s| {
                let _ = writeln!(out, "{}\t{}", n.to_uppercase(), scalar(s));
            }),
            None => {
                let _ = writeln!(out, "{}", scalars.iter().map(|s| scalar(s)).collect::<Vec<_>>().join("\t"));
            }
        }
    }
    for n in nested {
        item(n, name, None, out);
    }
}

fn dict(v: &Value, name: Option<&str>, columns: Option<&[String]>, out: &mut String) {
    let Some(o) = v.as_object() else { return };
    let mut keys: Vec<&String> = o.keys().collect();
    keys.sort();
    let (mut row, nested): (Vec<String>, Vec<&String>) = match columns {
        None => {
            let row = keys.iter().filter(|k| is_scalar(&o[**k])).map(|k| scalar(&o[*k])).collect();
            (row, keys.into_iter().filter(|k| !is_scalar(&o[*k])).collect())
        }
        Some(cols) => {
            let row = cols.iter().map(|c| o.get(c).map(scalar).unwrap_or_default()).collect();
            (row, keys.into_iter().filter(|k| !cols.contains(k)).collect())
        }
    };
    if !row.is_empty() {
        if let Some(n) = name {
            row.insert(0, n.to_uppercase());
        }
        let _ = writeln!(out, "{}", row.join("\t"));
    }
    for k in nested {
        item(&o[k], Some(k), None, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_print_bare() {
        assert_eq!(text(&json!("abc")), "abc\n");
        assert_eq!(text(&json!(true)), "True\n");
        assert_eq!(text(&json!(4)), "4\n");
    }

    #[test]
    fn dictionaries_as_the_aws_cli_prints_them() {
        let v = json!({"KeyMetadata": {"KeyId": "k", "Enabled": true, "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"]}});
        assert_eq!(text(&v), "KEYMETADATA\tTrue\tk\nENCRYPTIONALGORITHMS\tSYMMETRIC_DEFAULT\n");
    }

    #[test]
    fn list_rows_share_columns() {
        let v = json!({"Keys": [{"KeyId": "a", "KeyArn": "arn:a"}, {"KeyId": "b"}], "Truncated": false});
        assert_eq!(text(&v), "False\nKEYS\tarn:a\ta\nKEYS\t\tb\n");
    }

    #[test]
    fn a_query_selects_with_jmespath() {
        let v = json!({"Keys": [{"KeyId": "a"}, {"KeyId": "b"}], "CiphertextBlob": "Zm9v"});
        assert_eq!(query(&v, "CiphertextBlob").unwrap(), json!("Zm9v"));
        assert_eq!(query(&v, "Keys[*].KeyId").unwrap(), json!(["a", "b"]));
        assert_eq!(query(&v, "length(Keys)").unwrap(), json!(2));
        assert_eq!(text(&query(&v, "Keys[*].KeyId").unwrap()), "a\tb\n");
        assert!(query(&v, "Keys[").is_err());
    }
}
