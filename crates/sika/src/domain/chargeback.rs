//! A merchant's answer to a chargeback: accept it, or decline it with a comment
//! and evidence. The answer is outgoing consent under the same maker-checker
//! rule as money ([`super::approval`]): one person prepares it, an approver who
//! did not sends it with a fresh code. Evidence is judged by its content, never
//! by its name or the browser's word: PDF, PNG or JPEG, at most
//! [`MAX_EVIDENCE_BYTES`].

use super::AnswerStatus;
use super::checkout::Invalid;

/// The largest evidence file (the bulk CSV's cap too).
pub const MAX_EVIDENCE_BYTES: usize = 1024 * 1024;

/// Chargeback answers as a kind of outgoing consent.
pub enum ChargebackAnswers {}

impl super::approval::Outgoing for ChargebackAnswers {
    type Status = AnswerStatus;
    const AWAITING_APPROVAL: AnswerStatus = AnswerStatus::AwaitingApproval;
    const QUEUED: AnswerStatus = AnswerStatus::Queued;
}

/// Proof that an answer has the consent it needs (only `approval` makes it).
pub type AnswerApproved = super::approval::Approved<ChargebackAnswers>;

/// What the merchant says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Accept,
    Decline,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s.trim() {
            "accept" => Some(Action::Accept),
            "decline" => Some(Action::Decline),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Decline => "decline",
        }
    }
}

/// The kinds of evidence Flutterwave takes (images are confirmed; PDF is the common case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceKind {
    Pdf,
    Png,
    Jpeg,
}

impl EvidenceKind {
    /// What the bytes are, from their first bytes.
    pub fn sniff(bytes: &[u8]) -> Option<EvidenceKind> {
        if bytes.starts_with(b"%PDF-") {
            Some(EvidenceKind::Pdf)
        } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]) {
            Some(EvidenceKind::Png)
        } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            Some(EvidenceKind::Jpeg)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Pdf => "pdf",
            EvidenceKind::Png => "png",
            EvidenceKind::Jpeg => "jpeg",
        }
    }

    pub fn parse(s: &str) -> Option<EvidenceKind> {
        [EvidenceKind::Pdf, EvidenceKind::Png, EvidenceKind::Jpeg].into_iter().find(|k| k.as_str() == s)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            EvidenceKind::Pdf => "application/pdf",
            EvidenceKind::Png => "image/png",
            EvidenceKind::Jpeg => "image/jpeg",
        }
    }

    /// The name the file is sent under (never the uploader's).
    pub fn file_name(self) -> &'static str {
        match self {
            EvidenceKind::Pdf => "evidence.pdf",
            EvidenceKind::Png => "evidence.png",
            EvidenceKind::Jpeg => "evidence.jpg",
        }
    }

    fn extensions(self) -> &'static [&'static str] {
        match self {
            EvidenceKind::Pdf => &["pdf"],
            EvidenceKind::Png => &["png"],
            EvidenceKind::Jpeg => &["jpg", "jpeg"],
        }
    }
}

/// A checked evidence file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub kind: EvidenceKind,
    pub bytes: Vec<u8>,
}

/// A checked answer, ready to be recorded for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAnswer {
    pub action: Action,
    pub comment: String,
    pub evidence: Option<Evidence>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid { field, message: message.into() }
}

/// Checks an evidence file: not empty, at most the cap, a PDF, PNG or JPEG by its
/// content, and named like what it is (a `.pdf` that is a PNG is refused: someone
/// is confused or something is hidden).
pub fn evidence(name: &str, bytes: Vec<u8>) -> Result<Evidence, Invalid> {
    if bytes.is_empty() {
        return Err(invalid("evidence", "the file is empty"));
    }
    if bytes.len() > MAX_EVIDENCE_BYTES {
        return Err(invalid("evidence", format!("the file is larger than {} KiB", MAX_EVIDENCE_BYTES / 1024)));
    }
    let Some(kind) = EvidenceKind::sniff(&bytes) else {
        return Err(invalid("evidence", "the file is not a PDF, PNG or JPEG"));
    };
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    if !kind.extensions().contains(&ext.as_str()) {
        return Err(invalid("evidence", format!("the file's content is a {} but its name says .{ext}", kind.as_str())));
    }
    Ok(Evidence { kind, bytes })
}

/// Checks the answer's fields: the action, a one-paragraph comment (1–500
/// characters, no control characters but line breaks), evidence when declining.
pub fn answer(action: &str, comment: &str, evidence: Option<Evidence>) -> Result<NewAnswer, Invalid> {
    let Some(action) = Action::parse(action) else { return Err(invalid("action", "choose accept or decline")) };
    let comment = comment.trim();
    if comment.is_empty() || comment.chars().count() > 500 {
        return Err(invalid("comment", "must be 1 to 500 characters"));
    }
    if comment.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
        return Err(invalid("comment", "must be text without control characters"));
    }
    if action == Action::Decline && evidence.is_none() {
        return Err(invalid("evidence", "declining needs evidence (a PDF, PNG or JPEG)"));
    }
    Ok(NewAnswer { action, comment: comment.replace("\r\n", "\n"), evidence })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_is_judged_by_its_content() {
        assert_eq!(evidence("a.pdf", b"%PDF-1.7 ...".to_vec()).unwrap().kind, EvidenceKind::Pdf);
        let png = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0].to_vec();
        assert_eq!(evidence("shot.PNG", png.clone()).unwrap().kind, EvidenceKind::Png);
        assert_eq!(evidence("x.jpeg", vec![0xff, 0xd8, 0xff, 0xe0]).unwrap().kind, EvidenceKind::Jpeg);
        assert!(evidence("receipt.pdf", png).is_err(), "a PNG named .pdf");
        assert!(evidence("x.pdf", b"<html>%PDF-".to_vec()).is_err(), "HTML is not evidence");
        assert!(evidence("x.pdf", b"MZ\x90\x00".to_vec()).is_err(), "an executable is not evidence");
        assert!(evidence("x.pdf", Vec::new()).is_err());
        let mut big = b"%PDF-".to_vec();
        big.resize(MAX_EVIDENCE_BYTES + 1, b' ');
        assert!(evidence("x.pdf", big).unwrap_err().message.contains("larger"));
    }

    #[test]
    fn an_answer_needs_an_action_a_comment_and_for_a_decline_evidence() {
        let pdf = || Some(evidence("a.pdf", b"%PDF-1".to_vec()).unwrap());
        assert!(answer("accept", "we refund", None).is_ok());
        assert_eq!(answer("decline", "delivered", None).unwrap_err().field, "evidence");
        assert!(answer("decline", "delivered on 2 Dec", pdf()).is_ok());
        assert_eq!(answer("maybe", "x", None).unwrap_err().field, "action");
        assert_eq!(answer("accept", "  ", None).unwrap_err().field, "comment");
        assert_eq!(answer("accept", &"x".repeat(501), None).unwrap_err().field, "comment");
        assert_eq!(answer("accept", "a\u{0}b", None).unwrap_err().field, "comment");
        assert_eq!(answer("accept", "line one\r\nline two", None).unwrap().comment, "line one\nline two");
    }
}
