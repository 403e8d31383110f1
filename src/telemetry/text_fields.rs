//! Field formatting of the text log. Field values carry client-supplied text (the Basic
//! user, `account`, `service`, scope names, a forwarded-address header): written raw, a
//! CR/LF or a Unicode line separator would start a forged line, and a space, `=` or `"`
//! a forged field. Every value is therefore escaped, and quoted when it holds anything
//! but a plain word; the JSON format has its own escaping and does not use this.
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;

/// The text format's [`FormatFields`]: `message` first as escaped text, then
/// `name=value` pairs, values escaped and quoted where needed.
#[derive(Debug, Default, Clone, Copy)]
pub struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor { writer, result: Ok(()), first: true };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'w> {
    writer: Writer<'w>,
    result: fmt::Result,
    first: bool,
}

impl EscapingVisitor<'_> {
    fn write(&mut self, field: &Field, value: &str, quoted_by_type: bool) {
        if self.result.is_err() {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        let message = field.name() == "message";
        let quoted = !message && (quoted_by_type || needs_quotes(value));
        let w = &mut self.writer;
        self.result = (|| {
            w.write_str(separator)?;
            if !message {
                w.write_str(field.name())?;
                w.write_str(if quoted { "=\"" } else { "=" })?;
            }
            w.write_str(&escape(value, quoted))?;
            if quoted {
                w.write_char('"')?;
            }
            Ok(())
        })();
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // Strings were always quoted in the text log (`outcome="issued"`); keep that.
        self.write(field, value, field.name() != "message");
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Formatted into a per-thread buffer, not a new String per field: the audit line
        // has half a dozen such fields per token.
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut text) => {
                text.clear();
                let _ = write!(text, "{value:?}");
                self.write(field, &text, false);
                if text.capacity() > SCRATCH_KEEP_BYTES {
                    *text = String::new();
                }
            }
            // A value whose formatting logs an event itself: that one takes its own.
            Err(_) => self.write(field, &format!("{value:?}"), false),
        });
    }
}

thread_local! {
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A buffer grown past this by one huge value is not kept for the thread's lifetime.
const SCRATCH_KEEP_BYTES: usize = 16 * 1024;

/// A value is written bare only when it cannot be mistaken for more than one value.
fn needs_quotes(value: &str) -> bool {
    // Most values are short ASCII words: a byte test each, no char decoding.
    if value.is_ascii() {
        return value.is_empty() || value.bytes().any(|b| b <= b' ' || matches!(b, b'"' | b'=' | b'\\' | 0x7f));
    }
    needs_quotes_by_char(value)
}

fn needs_quotes_by_char(value: &str) -> bool {
    value.is_empty() || value.chars().any(|c| c.is_whitespace() || matches!(c, '"' | '=' | '\\') || must_escape(c))
}

/// Characters that end, break or disguise a line on a terminal or in a log viewer: the C0
/// and C1 controls (CR, LF, ESC, NUL, NEL...), DEL, the Unicode line and paragraph
/// separators, and the invisible format characters that reorder or hide text (bidi
/// overrides and isolates, zero-width characters, the BOM).
fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// `value` with [`must_escape`] characters as `\n`, `\r`, `\t`, `\0` or `\u{..}`. Inside
/// quotes, `"` and `\` are escaped too, so that the quoted text ends where it seems to.
fn escape(value: &str, quoted: bool) -> Cow<'_, str> {
    let plain_ascii = |b: u8| b >= b' ' && b != 0x7f && !(quoted && (b == b'"' || b == b'\\'));
    if value.is_ascii() && value.bytes().all(plain_ascii) {
        return Cow::Borrowed(value);
    }
    if !value.chars().any(|c| must_escape(c) || (quoted && (c == '"' || c == '\\'))) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            '"' | '\\' if quoted => {
                out.push('\\');
                out.push(c);
            }
            c if must_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaking_and_hidden_characters_are_escaped() {
        let evil = "a\r\nb\u{1b}[2K\0\u{7f}\u{85}\u{2028}\u{2029}\u{202e}\u{feff}\tc";
        assert_eq!(escape(evil, false), "a\\r\\nb\\u{1b}[2K\\0\\u{7f}\\u{85}\\u{2028}\\u{2029}\\u{202e}\\u{feff}\\tc");
        assert_eq!(escape("say \"hi\" \\o/", true), "say \\\"hi\\\" \\\\o/");
        assert_eq!(escape("plain ünïcode", true), "plain ünïcode");
    }

    #[test]
    fn the_ascii_fast_paths_decide_as_the_char_rules_do() {
        for b in 0u8..=0x7f {
            let value = format!("a{}b", b as char);
            assert_eq!(needs_quotes(&value), needs_quotes_by_char(&value), "{b:#x}");
            for quoted in [false, true] {
                let by_char = value.chars().any(|c| must_escape(c) || (quoted && (c == '"' || c == '\\')));
                assert_eq!(matches!(escape(&value, quoted), Cow::Owned(_)), by_char, "{b:#x} {quoted}");
            }
        }
    }

    #[test]
    fn only_plain_words_stay_unquoted() {
        assert!(!needs_quotes("admin"));
        assert!(!needs_quotes("10.0.0.7"));
        for value in ["", "a b", "a=b", "a\"b", "a\\nb", "a\nb", "a\u{2028}b"] {
            assert!(needs_quotes(value), "{value:?}");
        }
    }
}
