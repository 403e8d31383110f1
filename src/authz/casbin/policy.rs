//! The policy file, read line by line as Go casbin's file adapter does (`encoding/csv` with
//! `TrimLeadingSpace`), so docker_auth's policies with quoted JSON labels
//! (`"{""group"":[""devs""]}"`) load unchanged; casbin-rs's own reader splits inside them.

/// One policy line: its type (`p`, `g`, `p2`, ...), its values and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub line: usize,
    pub ptype: String,
    pub values: Vec<String>,
}

/// Parses the policy text; blank lines and `#` comments are skipped. Errors name the line.
pub fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = split_line(line).map_err(|e| format!("line {}: {e}", index + 1))?;
        let ptype = fields.remove(0);
        if ptype.is_empty() || fields.is_empty() {
            return Err(format!("line {}: a rule is a policy type (p, g, ...) followed by its values", index + 1));
        }
        rules.push(Rule { line: index + 1, ptype, values: fields });
    }
    Ok(rules)
}

/// Splits one line into fields: commas separate, leading blanks are dropped, a field that
/// starts with `"` is quoted (`""` is a quote inside it), a `"` elsewhere is an error.
fn split_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start();
        let tail = if let Some(quoted) = rest.strip_prefix('"') {
            let (value, after) = quoted_field(quoted)?;
            fields.push(value);
            match after.trim() {
                "" => None,
                after => Some(after.strip_prefix(',').ok_or("extraneous text after a quoted field")?),
            }
        } else {
            let (field, tail) = match rest.split_once(',') {
                Some((field, tail)) => (field, Some(tail)),
                None => (rest, None),
            };
            if field.contains('"') {
                return Err("bare \" in a non-quoted field (quote the whole field and double the quotes inside)".into());
            }
            fields.push(field.trim_end().to_string());
            tail
        };
        match tail {
            Some(tail) => rest = tail,
            None => return Ok(fields),
        }
    }
}

/// The value of a quoted field (after its opening quote) and the text after its closing one.
fn quoted_field(text: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            value.push(c);
        } else if chars.peek().is_some_and(|&(_, next)| next == '"') {
            value.push('"');
            chars.next();
        } else {
            return Ok((value, &text[i + 1..]));
        }
    }
    Err("missing closing \" in a quoted field".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_auths_example_policy_with_quoted_json() {
        let text =
            "p, alice, book, book1, bookstore1, 1.2.3.4, read, \"{\"\"a\"\":[\"\"b\"\"]}\"\n\n# note\ng, bob, role1\n";
        let rules = parse(text).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].values, ["alice", "book", "book1", "bookstore1", "1.2.3.4", "read", "{\"a\":[\"b\"]}"]);
        assert_eq!((rules[1].line, rules[1].ptype.as_str()), (4, "g"));
        assert_eq!(rules[1].values, ["bob", "role1"]);
    }

    #[test]
    fn go_csv_edge_cases() {
        assert_eq!(split_line("p,a,,b ,").unwrap(), ["p", "a", "", "b", ""]);
        assert_eq!(split_line("p, \"x, y\" , z").unwrap(), ["p", "x, y", "z"]);
        assert!(split_line("p, {\"a\":[\"b\",\"c\"]}").unwrap_err().contains("bare"));
        assert!(split_line("p, \"open").unwrap_err().contains("missing closing"));
        assert!(split_line("p, \"a\"b").unwrap_err().contains("extraneous"));
        assert!(parse("p\n").unwrap_err().starts_with("line 1:"));
    }
}
