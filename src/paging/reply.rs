//! Replies by SMS: "OK 123" acknowledges alarm instance 123.
//!
//! Accepted, case-insensitive, with or without Vietnamese diacritics, with any spaces,
//! `#`, `:` or `.` between the word and the number: `OK 123`, `ok123`, `OK #123`,
//! `ACK 123`, `NHẬN 123`, `ĐÃ NHẬN 123` (`DA NHAN 123`, `ĐÃ NHẬN` typed without
//! tones), `XÁC NHẬN 123`. Anything after the number is a comment (`OK 123 đang đến`).
//! Anything else is not a reply the gateway understands.

/// What a text says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Acknowledge this alarm instance, with an optional comment.
    Ack {
        /// The alarm's number.
        no: u64,
        /// The rest of the text, if any.
        comment: Option<String>,
    },
    /// Not understood.
    Unknown,
}

/// Words that acknowledge, after folding (upper case, no diacritics, no spaces).
const WORDS: &[&str] = &["OK", "ACK", "DANHAN", "NHAN", "XACNHAN", "DANHANOK"];

/// Upper case without Vietnamese diacritics (`Đã nhận` → `DA NHAN`).
pub fn fold(s: &str) -> String {
    const GROUPS: &[(&str, char)] = &[
        ("àáảãạăằắẳẵặâầấẩẫậÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬ", 'A'),
        ("èéẻẽẹêềếểễệÈÉẺẼẸÊỀẾỂỄỆ", 'E'),
        ("ìíỉĩịÌÍỈĨỊ", 'I'),
        ("òóỏõọôồốổỗộơờớởỡợÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢ", 'O'),
        ("ùúủũụưừứửữựÙÚỦŨỤƯỪỨỬỮỰ", 'U'),
        ("ỳýỷỹỵỲÝỶỸỴ", 'Y'),
        ("đĐ", 'D'),
    ];
    s.chars()
        .map(|c| {
            GROUPS
                .iter()
                .find(|(set, _)| set.contains(c))
                .map_or_else(|| c.to_ascii_uppercase(), |(_, to)| *to)
        })
        .collect()
}

/// Read a reply.
pub fn parse(text: &str) -> Reply {
    let folded = fold(text.trim());
    // The word: letters and spaces up to the first digit or `#`.
    let cut = folded
        .find(|c: char| c.is_ascii_digit() || c == '#')
        .unwrap_or(folded.len());
    let word: String = folded[..cut]
        .chars()
        .filter(|c| c.is_ascii_alphabetic())
        .collect();
    let between = &folded[..cut];
    if !between
        .chars()
        .all(|c| c.is_ascii_alphabetic() || c.is_whitespace() || matches!(c, ':' | '.' | '-' | ','))
    {
        return Reply::Unknown;
    }
    if !WORDS.contains(&word.as_str()) {
        return Reply::Unknown;
    }
    let rest = folded[cut..].trim_start_matches(['#', ' ']);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() > 12 {
        return Reply::Unknown;
    }
    let Ok(no) = digits.parse::<u64>() else {
        return Reply::Unknown;
    };
    if no == 0 {
        return Reply::Unknown;
    }
    // The comment from the original text (with its diacritics): what follows the number.
    let original = text.trim();
    let comment = original
        .char_indices()
        .filter(|(_, c)| c.is_ascii_digit())
        .map(|(i, _)| i)
        .nth(digits.len() - 1)
        .map(|i| original[i + 1..].trim().to_string())
        .filter(|c| !c.is_empty());
    Reply::Ack { no, comment }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_in_english_and_vietnamese() {
        let ack = |no| Reply::Ack { no, comment: None };
        let cases: &[(&str, Reply)] = &[
            ("OK 123", ack(123)),
            ("ok 123", ack(123)),
            ("  Ok   7 ", ack(7)),
            ("OK123", ack(123)),
            ("OK #123", ack(123)),
            ("ok: 45", ack(45)),
            ("ACK 9", ack(9)),
            ("ĐÃ NHẬN 123", ack(123)),
            ("Đã nhận 123", ack(123)),
            ("DA NHAN 123", ack(123)),
            ("da nhan 123", ack(123)),
            ("nhận 12", ack(12)),
            ("Xác nhận 5", ack(5)),
            (
                "OK 12 đang đến",
                Reply::Ack {
                    no: 12,
                    comment: Some("đang đến".into()),
                },
            ),
            ("OK", Reply::Unknown),
            ("OK 0", Reply::Unknown),
            ("hello 123", Reply::Unknown),
            ("123", Reply::Unknown),
            ("NOT OK 123", Reply::Unknown),
            ("", Reply::Unknown),
            ("OK 99999999999999999", Reply::Unknown),
            ("KHÔNG 12", Reply::Unknown),
        ];
        for (text, want) in cases {
            assert_eq!(&parse(text), want, "{text:?}");
        }
    }

    #[test]
    fn folding_removes_vietnamese_tones_and_the_stroke() {
        assert_eq!(fold("Đã nhận"), "DA NHAN");
        assert_eq!(fold("Xác nhận ữ"), "XAC NHAN U");
    }
}
