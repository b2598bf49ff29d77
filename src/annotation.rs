//! What the parsers of nucleus's own annotations (`run.nucleus.seccomp.*`,
//! `run.nucleus.landlock.*`) share: the annotations under one prefix, in a fixed order, and
//! values that are one word of a fixed set. Each parser keeps its own keys and error type.

use std::collections::HashMap;

/// The annotations whose key starts with `prefix`, sorted by key: the first bad one a parser
/// reports is the same every time.
pub fn under<'a>(
    annotations: &'a HashMap<String, String>,
    prefix: &str,
) -> Vec<(&'a String, &'a String)> {
    let mut ours: Vec<_> = annotations
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .collect();
    ours.sort();
    ours
}

/// The value `word` names among `choices`; else the words it may be ("a or b", "a, b or c"),
/// for the caller's error.
pub fn one_of<T: Copy>(word: &str, choices: &[(&str, T)]) -> Result<T, String> {
    if let Some(&(_, v)) = choices.iter().find(|(w, _)| *w == word) {
        return Ok(v);
    }
    let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
    Err(match words.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => words.concat(),
    })
}

/// Annotations from (key, value) pairs, for tests.
#[cfg(test)]
pub fn map(kv: &[(&str, &str)]) -> HashMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_keeps_the_prefix_in_key_order() {
        let a = map(&[("p.b", "2"), ("other", "x"), ("p.a", "1"), ("xp.c", "3")]);
        let got: Vec<(&str, &str)> = under(&a, "p.")
            .into_iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, [("p.a", "1"), ("p.b", "2")]);
    }

    #[test]
    fn one_of_names_the_choices() {
        let yes_no = [("true", true), ("false", false)];
        assert_eq!(one_of("false", &yes_no), Ok(false));
        assert_eq!(one_of("yes", &yes_no), Err("true or false".to_string()));
        let three = [("a", 1), ("b", 2), ("c", 3)];
        assert_eq!(one_of("c", &three), Ok(3));
        assert_eq!(one_of("A", &three), Err("a, b or c".to_string()));
    }
}
