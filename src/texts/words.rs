//! The status words: alarm levels (Art. 18.2), alarm states, honest value states and
//! reading qualities, and the connecting words of alarm messages.
//!
//! Each word is one match arm with both languages, so a new variant of a level, state
//! or quality cannot compile without its words.

use crate::model::{AlarmState, Language, Level, Quality};

use super::pick;

/// The incident level (Art. 18.2): `Sự cố thông thường` / `Normal incident`.
pub fn level(level: Level, lang: Language) -> &'static str {
    match level {
        Level::Normal => pick(lang, "Sự cố thông thường", "Normal incident"),
        Level::Serious => pick(lang, "Sự cố nghiêm trọng", "Serious incident"),
    }
}

/// The word of an alarm transition, as the head of a message or a list column.
/// `Cleared` is the word a clear message begins with.
pub fn state(state: AlarmState, lang: Language) -> &'static str {
    match state {
        AlarmState::Raised => pick(lang, "Đang cảnh báo", "Raised"),
        AlarmState::Acked => pick(lang, "Đã xác nhận", "Acknowledged"),
        AlarmState::Cleared => pick(lang, "Hết cảnh báo", "Cleared"),
        AlarmState::Shelved => pick(lang, "Tạm ẩn", "Shelved"),
        AlarmState::Unshelved => pick(lang, "Hết tạm ẩn", "Unshelved"),
    }
}

/// What a point, a device or an alarm is in, beyond the alarm transitions: the honest
/// states the wall view, the API texts and messages show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fresh value, no alarm.
    Ok,
    /// Beyond a limit but still inside the rule's on-delay: not green, not yet an alarm.
    Pending,
    /// The last good value is too old.
    Stale,
    /// The device does not answer.
    Unreachable,
    /// Inside a maintenance window: recorded, nobody is notified.
    InMaintenance,
    /// A serious alarm that cleared before anyone acknowledged it.
    ClearedUnacked,
    /// Taken off the shelf again.
    Unshelved,
}

/// The word of a [`Status`].
pub fn status(s: Status, lang: Language) -> &'static str {
    match s {
        Status::Ok => pick(lang, "Bình thường", "Normal"),
        Status::Pending => pick(lang, "Vượt ngưỡng, đang chờ", "Pending"),
        Status::Stale => pick(lang, "Số liệu cũ", "Stale data"),
        Status::Unreachable => pick(lang, "Mất liên lạc", "Unreachable"),
        Status::InMaintenance => pick(lang, "Đang bảo trì", "In maintenance"),
        Status::ClearedUnacked => pick(lang, "Đã hết, chưa xác nhận", "Cleared, not acknowledged"),
        Status::Unshelved => pick(lang, "Bỏ tạm ẩn", "Unshelved"),
    }
}

/// Why a value is or is not fresh, in words.
pub fn quality(q: Quality, lang: Language) -> &'static str {
    match q {
        Quality::Good => pick(lang, "Tốt", "Good"),
        Quality::Stale => pick(lang, "Số liệu cũ", "Stale data"),
        Quality::CommError => pick(lang, "Lỗi kết nối", "Link error"),
        Quality::Timeout => pick(
            lang,
            "Không phản hồi (quá thời gian)",
            "No answer (timeout)",
        ),
        Quality::DeviceException => pick(lang, "Thiết bị báo lỗi", "Device reported an error"),
        Quality::NoSuchObject => pick(lang, "Không có đối tượng", "No such object"),
        Quality::OutOfRange => pick(lang, "Ngoài dải đo", "Out of range"),
        Quality::Unknown => pick(
            lang,
            "Thiết bị báo không xác định",
            "Device reports not available",
        ),
    }
}

/// A boolean value for people: `Có` / `Không`, `Yes` / `No`.
pub fn yes_no(b: bool, lang: Language) -> &'static str {
    if b {
        pick(lang, "Có", "Yes")
    } else {
        pick(lang, "Không", "No")
    }
}

/// Connecting words of alarm messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phrase {
    /// "above" a limit.
    Above,
    /// "below" a limit.
    Below,
    /// Back below a limit (an upper threshold cleared).
    BackBelow,
    /// Back above a limit (a lower threshold cleared).
    BackAbove,
    /// Article prefix.
    Article,
    /// "for more than" (an on-delay that is part of the condition).
    ForMoreThan,
    /// "now:" before a current state value.
    Now,
    /// "changed by".
    ChangedBy,
    /// "within".
    Within,
    /// "limit".
    Limit,
    /// A value steady again.
    SteadyAgain,
    /// Communication lost.
    CommLost,
    /// No valid reading for.
    NoValidReadingFor,
    /// Poll intervals.
    PollIntervals,
    /// Communication restored.
    CommRestored,
    /// Before the place of a device (room, rack).
    In,
    /// Before a local time.
    At,
}

/// The words of a phrase in a language.
pub fn phrase(p: Phrase, lang: Language) -> &'static str {
    let (vi, en) = match p {
        Phrase::Above => ("vượt ngưỡng", "above"),
        Phrase::Below => ("dưới ngưỡng", "below"),
        Phrase::BackBelow => ("đã trở lại dưới ngưỡng", "back below"),
        Phrase::BackAbove => ("đã trở lại trên ngưỡng", "back above"),
        Phrase::Article => ("Điều", "Art."),
        Phrase::ForMoreThan => ("quá", "for more than"),
        Phrase::Now => ("hiện tại:", "now:"),
        Phrase::ChangedBy => ("thay đổi", "changed by"),
        Phrase::Within => ("trong", "within"),
        Phrase::Limit => ("giới hạn", "limit"),
        Phrase::SteadyAgain => ("đã ổn định trở lại:", "steady again:"),
        Phrase::CommLost => ("Mất liên lạc với thiết bị", "Communication lost"),
        Phrase::NoValidReadingFor => ("không có số đo hợp lệ trong", "no valid reading for"),
        Phrase::PollIntervals => ("chu kỳ đọc", "poll intervals"),
        Phrase::CommRestored => (
            "Đã khôi phục liên lạc với thiết bị",
            "Communication restored",
        ),
        Phrase::In => ("tại", "in"),
        Phrase::At => ("lúc", "at"),
    };
    pick(lang, vi, en)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VI: Language = Language::Vi;
    const EN: Language = Language::En;

    #[test]
    fn levels() {
        assert_eq!(level(Level::Normal, VI), "Sự cố thông thường");
        assert_eq!(level(Level::Serious, VI), "Sự cố nghiêm trọng");
        assert_eq!(level(Level::Normal, EN), "Normal incident");
        assert_eq!(level(Level::Serious, EN), "Serious incident");
    }

    #[test]
    fn alarm_states() {
        assert_eq!(state(AlarmState::Raised, VI), "Đang cảnh báo");
        assert_eq!(state(AlarmState::Acked, VI), "Đã xác nhận");
        assert_eq!(state(AlarmState::Cleared, VI), "Hết cảnh báo");
        assert_eq!(state(AlarmState::Shelved, VI), "Tạm ẩn");
        assert_eq!(state(AlarmState::Raised, EN), "Raised");
        assert_eq!(state(AlarmState::Acked, EN), "Acknowledged");
        assert_eq!(state(AlarmState::Cleared, EN), "Cleared");
        assert_eq!(state(AlarmState::Shelved, EN), "Shelved");
    }

    #[test]
    fn statuses() {
        for (s, vi, en) in [
            (Status::Ok, "Bình thường", "Normal"),
            (Status::Pending, "Vượt ngưỡng, đang chờ", "Pending"),
            (Status::Stale, "Số liệu cũ", "Stale data"),
            (Status::Unreachable, "Mất liên lạc", "Unreachable"),
            (Status::InMaintenance, "Đang bảo trì", "In maintenance"),
            (
                Status::ClearedUnacked,
                "Đã hết, chưa xác nhận",
                "Cleared, not acknowledged",
            ),
            (Status::Unshelved, "Bỏ tạm ẩn", "Unshelved"),
        ] {
            assert_eq!(status(s, VI), vi, "{s:?}");
            assert_eq!(status(s, EN), en, "{s:?}");
        }
    }

    #[test]
    fn qualities() {
        for (q, vi, en) in [
            (Quality::Good, "Tốt", "Good"),
            (Quality::Stale, "Số liệu cũ", "Stale data"),
            (Quality::CommError, "Lỗi kết nối", "Link error"),
            (
                Quality::Timeout,
                "Không phản hồi (quá thời gian)",
                "No answer (timeout)",
            ),
            (
                Quality::DeviceException,
                "Thiết bị báo lỗi",
                "Device reported an error",
            ),
            (
                Quality::NoSuchObject,
                "Không có đối tượng",
                "No such object",
            ),
            (Quality::OutOfRange, "Ngoài dải đo", "Out of range"),
            (
                Quality::Unknown,
                "Thiết bị báo không xác định",
                "Device reports not available",
            ),
        ] {
            assert_eq!(quality(q, VI), vi, "{q:?}");
            assert_eq!(quality(q, EN), en, "{q:?}");
        }
    }

    #[test]
    fn yes_and_no() {
        assert_eq!(yes_no(true, VI), "Có");
        assert_eq!(yes_no(false, VI), "Không");
        assert_eq!(yes_no(true, EN), "Yes");
        assert_eq!(yes_no(false, EN), "No");
    }
}
