//! Reconciliation: is this bag the right bag, here, now? From one scan, the cached orders and
//! the workstation's context to a [`Verdict`]: `match`, or `mismatch` with a reason from a
//! closed set and a plain-language message for the screen. Pure: no I/O, no clock (the time is
//! in the context), so every rule is tested directly.
//!
//! Every identifier a scan carries is checked (a compound message or concatenated read holds
//! several); any disagreement is a mismatch. Messages name bags, orders and identifiers, never
//! patient data: the screen shows the patient from the order when it needs to.

use std::collections::HashSet;

use crate::isbt128::coi::CoiId;
use crate::isbt128::din::{Din, FlagKind};
use crate::isbt128::error::Isbt128Error;
use crate::isbt128::message::Message;
use crate::isbt128::product::ProductCode;
use crate::isbt128::structure::Value;
use crate::orders::OrderBook;
use crate::orders::record::{Order, OrderStatus};

/// How long a scan that carried one identifier waits, by default, for a scan of the other from
/// the same source (`[scanning] pair_window_secs`).
pub const PAIR_WINDOW: std::time::Duration = std::time::Duration::from_secs(15);

/// What the workstation is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Scanning a label just printed, on the bag, before it leaves the station.
    Verify,
    /// Receiving a bag at a site.
    Receipt,
}

impl Step {
    /// As the journal, the API and the configuration spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Verify => "verify",
            Step::Receipt => "receipt",
        }
    }

    /// The step `text` names (`receipt` or `verify`).
    pub fn parse(text: &str) -> Option<Step> {
        match text {
            "verify" => Some(Step::Verify),
            "receipt" => Some(Step::Receipt),
            _ => None,
        }
    }
}

/// Which end of the chain the workstation's site is for an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The apheresis site: collects, labels, ships, and later receives the patient's drug.
    Collection,
    /// The cell lab that manufactures the drug.
    Manufacturing,
}

/// The workstation's context for one scan.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub site_id: &'a str,
    pub step: Step,
    /// `None`: taken from which of the order's facilities is this site.
    pub role: Option<Role>,
    pub now: jiff::Timestamp,
    /// What the person expects to be scanning: the label just printed (verify) or the order
    /// being received (receipt). A scan of anything else is a mismatch.
    pub expected: Option<Expected>,
    /// Bags already received here, as (COI identifier, bag number), from the journal.
    pub received: &'a HashSet<(CoiId, u8)>,
    /// When the cached orders were last brought up to date from the central service, and how
    /// old they may be for a receipt to match (`[orders] max_age_secs`); `None` when orders
    /// come from a file, which is always current.
    pub freshness: Option<Freshness>,
}

/// How current the cached orders are, for a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// The last successful sync, if any.
    pub synced_at: Option<jiff::Timestamp>,
    pub max_age: std::time::Duration,
}

impl Freshness {
    /// How old the orders are when they are too old at `now`: `None` when fresh enough;
    /// `Some(None)` when never synced, or synced "later" than now by more than a few minutes
    /// (the clock stepped back: their age is unknown).
    pub fn too_old(&self, now: jiff::Timestamp) -> Option<Option<std::time::Duration>> {
        let Some(synced) = self.synced_at else {
            return Some(None);
        };
        let ahead = synced.duration_since(now);
        if ahead > jiff::SignedDuration::from_mins(5) {
            return Some(None);
        }
        let age = std::time::Duration::try_from(now.duration_since(synced)).unwrap_or_default();
        (age > self.max_age).then_some(Some(age))
    }
}

/// The identifiers a person expects; unset fields are not compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub coi: CoiId,
    pub din: Option<Din>,
    pub bag: Option<u8>,
    /// A sample tube's label (flags `06`/`07`), not a bag's.
    pub sample: bool,
    /// The collection time the label carries (DS 007, in the collection site's zone, to the
    /// minute): a read that carries another is not the label.
    pub collected_at: Option<jiff::Timestamp>,
}

/// A scan's bytes, as far as they could be read.
#[derive(Debug, Clone, Copy)]
pub enum ScanRead<'m, 'a> {
    Parsed(&'m Message<'a>),
    /// Two reads judged as one (docs/decisions.md, "Two identifiers"): the earlier half (one
    /// identifier), then this scan; every identifier of either must agree with the other's.
    Paired(&'m Message<'a>, &'m Message<'a>),
    /// The read itself is incomplete or garbled (cut short, oversize, no suffix).
    Unreadable,
    Invalid(&'m Isbt128Error),
}

/// The identifier a scan lacks for a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Missing {
    Din,
    Coi,
}

impl Missing {
    pub fn as_str(self) -> &'static str {
        match self {
            Missing::Din => "din",
            Missing::Coi => "coi",
        }
    }
}

/// What a scan is found to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The right bag, here, now: both identifiers agree.
    Match,
    /// A sample tube of the right order (flags `06`/`07`): never a bag; recorded as a sample.
    Sample,
    /// One identifier of a known order: not final, never a match; the other completes it.
    Incomplete(Missing),
    Mismatch(Reason),
}

impl Outcome {
    /// As JSON and the journal spell it: `match`, `sample`, `incomplete` or `mismatch`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Match => "match",
            Outcome::Sample => "sample",
            Outcome::Incomplete(_) => "incomplete",
            Outcome::Mismatch(_) => "mismatch",
        }
    }
}

/// Why a scan does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Unreadable,
    NotIsbt128,
    BadCheck,
    NoIdentifier,
    ConflictingIdentifiers,
    UnknownCoi,
    UnknownDin,
    DinCoiMismatch,
    WrongProduct,
    OrderCancelled,
    OrderOnHold,
    WrongSite,
    BagOutOfRange,
    BagNotIdentified,
    AlreadyReceived,
    WrongStatus,
    Expired,
    NotExpected,
    /// The DIN's flags say this is not a bag's label (a tube, a sample, a partial label).
    NotABag,
    /// The order's latest update from central was refused: the cached version may be stale.
    OrderHeld,
    /// The cached orders have not been brought up to date from central for longer than allowed.
    OrderStale,
    /// Central could not be asked whether another workstation received the bag, and the site
    /// receives only with its word (`[central] offline = "refuse"`).
    CentralOffline,
}

/// The outcome for one scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub message: String,
    pub coi: Option<CoiId>,
    pub din: Option<Din>,
    pub bag: Option<u8>,
    /// How many bags the order has, to say "bag 2 of 3" with the verdict.
    pub bags: Option<u8>,
    pub order_id: Option<String>,
}

impl Reason {
    /// Every reason, for documentation and tests.
    pub const ALL: [Reason; 22] = [
        Reason::Unreadable,
        Reason::NotIsbt128,
        Reason::BadCheck,
        Reason::NoIdentifier,
        Reason::ConflictingIdentifiers,
        Reason::UnknownCoi,
        Reason::UnknownDin,
        Reason::DinCoiMismatch,
        Reason::WrongProduct,
        Reason::OrderCancelled,
        Reason::OrderOnHold,
        Reason::WrongSite,
        Reason::BagOutOfRange,
        Reason::BagNotIdentified,
        Reason::AlreadyReceived,
        Reason::WrongStatus,
        Reason::Expired,
        Reason::NotExpected,
        Reason::NotABag,
        Reason::OrderHeld,
        Reason::OrderStale,
        Reason::CentralOffline,
    ];

    /// The reason whose [`Reason::code`] is `code`.
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The stable code, for JSON, events and the journal.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Unreadable => "unreadable",
            Reason::NotIsbt128 => "not_isbt128",
            Reason::BadCheck => "bad_check",
            Reason::NoIdentifier => "no_identifier",
            Reason::ConflictingIdentifiers => "conflicting_identifiers",
            Reason::UnknownCoi => "unknown_coi",
            Reason::UnknownDin => "unknown_din",
            Reason::DinCoiMismatch => "din_coi_mismatch",
            Reason::WrongProduct => "wrong_product",
            Reason::OrderCancelled => "order_cancelled",
            Reason::OrderOnHold => "order_on_hold",
            Reason::WrongSite => "wrong_site",
            Reason::BagOutOfRange => "bag_out_of_range",
            Reason::BagNotIdentified => "bag_not_identified",
            Reason::AlreadyReceived => "already_received",
            Reason::WrongStatus => "wrong_status",
            Reason::Expired => "expired",
            Reason::NotExpected => "not_expected",
            Reason::NotABag => "not_a_bag",
            Reason::OrderHeld => "order_held",
            Reason::OrderStale => "order_stale",
            Reason::CentralOffline => "central_offline",
        }
    }
}

impl Verdict {
    pub fn is_match(&self) -> bool {
        self.outcome == Outcome::Match
    }

    /// The reason of a mismatch.
    pub fn reason(&self) -> Option<Reason> {
        match self.outcome {
            Outcome::Mismatch(reason) => Some(reason),
            _ => None,
        }
    }

    /// A verdict of `outcome` with `message` and nothing identified.
    pub fn bare(outcome: Outcome, message: String) -> Verdict {
        Verdict {
            outcome,
            message,
            coi: None,
            din: None,
            bag: None,
            bags: None,
            order_id: None,
        }
    }
}

/// The identifiers one scan carries.
#[derive(Debug, Default)]
struct Identifiers {
    din: Option<(Din, crate::isbt128::din::DinFlags)>,
    coi: Option<CoiId>,
    product: Option<ProductCode>,
    collected: Option<crate::isbt128::date::DateTime>,
}

/// Checks one scan (or a pair of halves) against the orders in the context of this workstation.
pub fn reconcile(read: ScanRead<'_, '_>, book: &OrderBook, ctx: &Context<'_>) -> Verdict {
    let mut verdict = Verdict::bare(Outcome::Match, String::new());
    let res = check(read, book, ctx, &mut verdict);
    match res {
        Ok((outcome, message)) => {
            verdict.outcome = outcome;
            verdict.message = message;
        }
        Err((reason, message, bag)) => {
            verdict.outcome = Outcome::Mismatch(reason);
            verdict.bag = verdict.bag.or(bag);
            verdict.message = message;
        }
    }
    verdict
}

/// Why a scan is refused, the message, and the bag number the scan said when it is not one of
/// the order's (so the verdict still reports what was scanned).
type Refusal = (Reason, String, Option<u8>);

/// What the scanned label is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Bag(u8),
    Sample,
}

fn check(
    read: ScanRead<'_, '_>,
    book: &OrderBook,
    ctx: &Context<'_>,
    v: &mut Verdict,
) -> Result<(Outcome, String), Refusal> {
    let messages: &[&Message<'_>] = match read {
        ScanRead::Parsed(message) => &[message],
        ScanRead::Paired(earlier, scan) => &[earlier, scan],
        ScanRead::Unreadable => {
            return Err(refuse(
                Reason::Unreadable,
                "The scan was not read completely. Scan the label again.",
            ));
        }
        ScanRead::Invalid(err) if err.is_check_failure() => {
            return Err(refuse(
                Reason::BadCheck,
                "The DIN's check characters do not match: this label may be damaged or wrong. Do not use this bag; call your supervisor.",
            ));
        }
        ScanRead::Invalid(Isbt128Error::NotPrintable { .. } | Isbt128Error::Empty) => {
            return Err(refuse(
                Reason::Unreadable,
                "The scan was garbled. Scan the label again.",
            ));
        }
        // An ISBT 128 structure read too short or too long (a scan cut off, two reads run
        // together): a bad read of a real label, not another kind of barcode.
        ScanRead::Invalid(Isbt128Error::WrongLength { .. } | Isbt128Error::TrailingData { .. }) => {
            return Err(refuse(
                Reason::Unreadable,
                "The scan was cut short or ran on. Scan the label again.",
            ));
        }
        ScanRead::Invalid(_) => {
            return Err(refuse(
                Reason::NotIsbt128,
                "This is not an ISBT 128 chain-of-identity label. Scan the DIN, COI or DataMatrix barcode on the bag.",
            ));
        }
    };
    let ids = identifiers(messages)?;
    // With a job expected (verify), half a read that already names another order, DIN or bag
    // is no half: the label is not the job's.
    if let (Some(expected), true) = (ctx.expected, ids.din.is_none() != ids.coi.is_none())
        && let Some(what) = contradicts(&ids, &expected)
    {
        return Err(refuse(
            Reason::NotExpected,
            &format!(
                "This label's {what} is not the one of the label just printed. Do not use this label; call your supervisor."
            ),
        ));
    }
    v.coi = ids.coi;
    v.din = ids.din.map(|(din, _)| din);
    if ids.din.is_none() && ids.coi.is_none() {
        return Err(refuse(
            Reason::NoIdentifier,
            "This barcode does not identify a bag. Scan the DataMatrix, DIN or COI barcode.",
        ));
    }
    let order = find_order(&ids, book)?;
    if let Some(product) = ids.product {
        let ours = order.product.code;
        if product.description_code() != ours.description_code()
            || product.collection_type() != ours.collection_type()
        {
            return Err(refuse(
                Reason::WrongProduct,
                "The product code on this bag is not the one ordered. Do not use this bag; call your supervisor.",
            ));
        }
    }
    // One identifier is never enough (docs/decisions.md, "Two identifiers"): a single wrong
    // character in it can name another patient's order, so nothing of that order is said or
    // checked until the other identifier agrees with it.
    match (ids.din, ids.coi) {
        (Some(_), None) => {
            return Ok((
                Outcome::Incomplete(Missing::Coi),
                "DIN read. Now scan the COI barcode too (or the DataMatrix).".to_owned(),
            ));
        }
        (None, Some(_)) => {
            return Ok((
                Outcome::Incomplete(Missing::Din),
                "COI identifier read. Now scan the DIN barcode too (or the DataMatrix).".to_owned(),
            ));
        }
        _ => {}
    }
    v.order_id = Some(order.order_id.clone());
    v.coi = Some(order.coi);
    v.bags = Some(order.collection.bags);
    if book.held(&order.coi).is_some() {
        return Err(refuse(
            Reason::OrderHeld,
            &format!(
                "Order {}'s latest update from the central service could not be accepted, so what is known here may be out of date. Set this bag aside and call your supervisor.",
                order.order_id
            ),
        ));
    }
    match order.status {
        OrderStatus::Cancelled => {
            return Err(refuse(
                Reason::OrderCancelled,
                &format!(
                    "Order {} is cancelled. Do not use this bag; call your supervisor.",
                    order.order_id
                ),
            ));
        }
        OrderStatus::OnHold => {
            return Err(refuse(
                Reason::OrderOnHold,
                &format!(
                    "Order {} is on hold. Set this bag aside and call your supervisor.",
                    order.order_id
                ),
            ));
        }
        _ => {}
    }
    let role = role_here(order, ctx)?;
    let item = item(&ids, order)?;
    let of = match item {
        Item::Bag(bag) => {
            v.bag = Some(bag);
            format!("bag {bag} of {}", order.collection.bags)
        }
        Item::Sample => "a sample tube".to_owned(),
    };
    if let Some(expected) = ctx.expected {
        let same = expected.coi == order.coi
            && expected.din.is_none_or(|din| Some(din) == v.din)
            && match item {
                Item::Bag(bag) => !expected.sample && expected.bag.is_none_or(|b| b == bag),
                Item::Sample => expected.sample,
            };
        let wrong_time = match (expected.collected_at, ids.collected) {
            (Some(job), Some(read)) => !same_minute(job, read, &order.collection.time_zone),
            _ => false,
        };
        if wrong_time {
            return Err(refuse(
                Reason::NotExpected,
                &format!(
                    "This is {of} of order {}, but its collection time is not the one of the label just printed. Do not use this label; call your supervisor.",
                    order.order_id
                ),
            ));
        }
        if !same {
            let what = match ctx.step {
                Step::Verify => "the label just printed",
                Step::Receipt => "the order you are receiving",
            };
            return Err(refuse(
                Reason::NotExpected,
                &format!(
                    "This is {of} of order {}, not {what}. Do not use this label; call your supervisor.",
                    order.order_id
                ),
            ));
        }
    }
    status_allows(order, role, ctx, item, &of)?;
    if order.expires_at.is_some_and(|expiry| expiry < ctx.now) {
        return Err(refuse(
            Reason::Expired,
            &format!(
                "Order {} has expired. Do not use this bag; call your supervisor.",
                order.order_id
            ),
        ));
    }
    // A receipt is judged against an order record that may be hours old when central cannot be
    // reached: beyond `max_age`, nothing is accepted as matching (issue #13).
    if let (Step::Receipt, Some(freshness)) = (ctx.step, ctx.freshness)
        && let Some(age) = freshness.too_old(ctx.now)
    {
        let since = match age {
            Some(age) => format!("{} minutes ago", age.as_secs() / 60),
            None => "never (or at a time this workstation's clock cannot place)".to_owned(),
        };
        return Err(refuse(
            Reason::OrderStale,
            &format!(
                "The orders here were last brought up to date from the central service {since}: too long to trust order {}'s record. Set this bag aside; receive it when orders sync again (check the network, call IT).",
                order.order_id
            ),
        ));
    }
    let order_id = &order.order_id;
    Ok(match (item, ctx.step) {
        (Item::Bag(_), Step::Verify) => (
            Outcome::Match,
            format!("MATCH: {of} of order {order_id}, label correct."),
        ),
        (Item::Bag(_), Step::Receipt) => (
            Outcome::Match,
            format!("MATCH: {of} of order {order_id}, expected here. Receive it."),
        ),
        (Item::Sample, Step::Verify) => (
            Outcome::Sample,
            format!("SAMPLE: a sample tube label of order {order_id}, correct. Not a bag label."),
        ),
        (Item::Sample, Step::Receipt) => (
            Outcome::Sample,
            format!(
                "SAMPLE: a sample tube of order {order_id}, not a bag. Recorded as a sample; the bags are received by their own labels."
            ),
        ),
    })
}

fn refuse(reason: Reason, message: &str) -> Refusal {
    (reason, message.to_owned(), None)
}

/// A refusal that names the bag the scan said (a bag the order does not have).
fn refuse_with_bag(bag: u8, reason: Reason, message: &str) -> Refusal {
    (reason, message.to_owned(), Some(bag))
}

/// Whether `at`, in the IANA zone `zone`, is the local date and minute `read` (DS 007 carries
/// the collection site's local time). An unknown zone matches nothing.
fn same_minute(at: jiff::Timestamp, read: crate::isbt128::date::DateTime, zone: &str) -> bool {
    let Ok(zone) = jiff::tz::TimeZone::get(zone) else {
        return false;
    };
    let local = at.to_zoned(zone);
    i32::from(read.date.year()) == i32::from(local.year())
        && read.date.month() as i8 == local.month()
        && read.date.day() as i8 == local.day()
        && read.hour() as i8 == local.hour()
        && read.minute() as i8 == local.minute()
}

/// What of one identifier contradicts the expected label, if anything: its COI identifier, its
/// DIN, or the bag (or sample) its flags name.
fn contradicts(ids: &Identifiers, expected: &Expected) -> Option<&'static str> {
    if ids.coi.is_some_and(|coi| coi != expected.coi) {
        return Some("COI identifier");
    }
    let (din, flags) = ids.din?;
    if expected.din.is_some_and(|d| d != din) {
        return Some("DIN");
    }
    if flags.kind() != FlagKind::Iccbba {
        return None;
    }
    let bag_differs = match (flags.container_number(), expected.bag) {
        (Some(n), Some(bag)) => n != bag,
        (Some(_), None) => expected.sample,
        // Not a container: right only for a sample tube's label expected as one.
        (None, _) => !(flags.is_sample_tube() && expected.sample),
    };
    bag_differs.then_some("bag number")
}

/// Collects the identifiers; two different values of one kind in one scan (or in the two halves
/// of a pair) are a conflict.
fn identifiers(messages: &[&Message<'_>]) -> Result<Identifiers, Refusal> {
    let conflict = || {
        refuse(
            Reason::ConflictingIdentifiers,
            if messages.len() > 1 {
                "This scan and the one before it from this scanner carry identifiers that disagree. Do not use this bag; call your supervisor."
            } else {
                "This scan carries identifiers that disagree with each other. Do not use this bag; call your supervisor."
            },
        )
    };
    let mut ids = Identifiers::default();
    for structure in messages.iter().flat_map(|m| m.data_structures()) {
        match structure.value {
            Value::Donation(d) => {
                if ids
                    .din
                    .is_some_and(|(din, flags)| din != d.din() || flags != d.flags())
                {
                    return Err(conflict());
                }
                ids.din = Some((d.din(), d.flags()));
            }
            Value::Coi(coi) => {
                if ids.coi.is_some_and(|c| c != coi) {
                    return Err(conflict());
                }
                ids.coi = Some(coi);
            }
            Value::ProductCode(p) => {
                if ids.product.is_some_and(|q| q != p) {
                    return Err(conflict());
                }
                ids.product = Some(p);
            }
            Value::DateTime(crate::isbt128::date::DateRole::Collection, at) => {
                if ids.collected.is_some_and(|c| c != at) {
                    return Err(conflict());
                }
                ids.collected = Some(at);
            }
            _ => {}
        }
    }
    Ok(ids)
}

/// The one order both identifiers point to.
fn find_order<'b>(ids: &Identifiers, book: &'b OrderBook) -> Result<&'b Order, Refusal> {
    let by_coi = ids.coi.map(|coi| book.by_coi(&coi));
    let by_din = ids.din.map(|(din, _)| book.by_din(&din));
    match (by_coi, by_din) {
        (Some(None), _) => Err(refuse(
            Reason::UnknownCoi,
            "This COI identifier is not on any order known here. Do not use this bag; call your supervisor.",
        )),
        (Some(Some(order)), Some(by_din)) => match by_din {
            Some(other) if std::ptr::eq(order, other) => Ok(order),
            _ => Err(refuse(
                Reason::DinCoiMismatch,
                &format!(
                    "The DIN {} and the COI identifier {} belong to different orders. Do not use this bag; call your supervisor.",
                    ids.din.map(|(din, _)| din.grouped()).unwrap_or_default(),
                    order.coi.grouped()
                ),
            )),
        },
        (Some(Some(order)), None) => Ok(order),
        (None, Some(Some(order))) => Ok(order),
        (None, Some(None)) => Err(refuse(
            Reason::UnknownDin,
            "This DIN is not on any order known here. Do not use this bag; call your supervisor.",
        )),
        (None, None) => Err(refuse(
            Reason::NoIdentifier,
            "This barcode does not identify a bag.",
        )),
    }
}

/// Which end of the order this workstation is, and whether it is one at all.
fn role_here(order: &Order, ctx: &Context<'_>) -> Result<Role, Refusal> {
    let collection = order.collection.facility.site_id == ctx.site_id;
    let manufacturing = order.manufacturing.site_id == ctx.site_id;
    let wrong_site = || {
        refuse(
            Reason::WrongSite,
            &format!(
                "Order {} is not for this site. Do not accept this bag; call your supervisor.",
                order.order_id
            ),
        )
    };
    match ctx.role {
        Some(Role::Collection) if collection => Ok(Role::Collection),
        Some(Role::Manufacturing) if manufacturing => Ok(Role::Manufacturing),
        Some(_) => Err(wrong_site()),
        // A site that is both ends of an order works as what the step needs: receipt of a bag
        // still in the first leg happens at the manufacturer.
        None if collection && manufacturing => Ok(match (ctx.step, order.status) {
            (Step::Verify, OrderStatus::Scheduled | OrderStatus::Collected) => Role::Collection,
            (
                Step::Receipt,
                OrderStatus::ShippedToSite | OrderStatus::ReceivedAtSite | OrderStatus::Infused,
            ) => Role::Collection,
            _ => Role::Manufacturing,
        }),
        None if collection => Ok(Role::Collection),
        None if manufacturing => Ok(Role::Manufacturing),
        None => Err(wrong_site()),
    }
}

/// What the label is on: a bag, numbered by the container flags of ST-001 Table 3 (`01`–`04`,
/// `15`–`19`: containers 1–9; docs/decisions.md), or a sample tube (`06` pilot tube, `07` test
/// tube). Any other Type 1 flag (`05`, `08`–`14`: a repeat label, a sample for other tests, a
/// partial label) is never taken for a bag. A one-bag collection needs no number; a scan of a
/// multi-bag collection without one does not say which bag it is.
fn item(ids: &Identifiers, order: &Order) -> Result<Item, Refusal> {
    let bags = order.collection.bags;
    let type1 = ids
        .din
        .map(|(_, flags)| flags)
        .filter(|flags| flags.kind() == FlagKind::Iccbba);
    if let Some(flags) = type1 {
        if flags.is_sample_tube() {
            return Ok(Item::Sample);
        }
        if flags.container_number().is_none() {
            return Err(refuse(
                Reason::NotABag,
                &format!(
                    "This is not a bag's label: its DIN flags {flags} mark {} of order {}. Scan the label on the bag itself.",
                    flags.type1_meaning().unwrap_or("another kind of label"),
                    order.order_id
                ),
            ));
        }
    }
    match type1.and_then(|flags| flags.container_number()) {
        Some(n) if n <= bags => Ok(Item::Bag(n)),
        Some(n) => Err(refuse_with_bag(
            n,
            Reason::BagOutOfRange,
            &format!(
                "This label says bag {n}, but order {} has {bags} bag(s). Do not use this bag; call your supervisor.",
                order.order_id
            ),
        )),
        None if bags == 1 => Ok(Item::Bag(1)),
        None => Err(refuse(
            Reason::BagNotIdentified,
            &format!(
                "Order {} has {bags} bags and this read does not say which one. Scan the DataMatrix or the DIN barcode; when typing, choose the bag.",
                order.order_id
            ),
        )),
    }
}

/// Whether the order's status allows this step at this end, and whether the bag is already in.
fn status_allows(
    order: &Order,
    role: Role,
    ctx: &Context<'_>,
    item: Item,
    of: &str,
) -> Result<(), Refusal> {
    use OrderStatus as S;
    let status = order.status;
    let (allowed, already_done): (&[S], &[S]) = match (role, ctx.step) {
        (Role::Collection, Step::Verify) => (&[S::Scheduled, S::Collected], &[]),
        (Role::Manufacturing, Step::Receipt) => (
            &[S::Shipped],
            &[
                S::Received,
                S::InManufacture,
                S::Released,
                S::ShippedToSite,
                S::ReceivedAtSite,
                S::Infused,
            ],
        ),
        (Role::Manufacturing, Step::Verify) => (&[S::Received, S::InManufacture, S::Released], &[]),
        (Role::Collection, Step::Receipt) => {
            (&[S::ShippedToSite], &[S::ReceivedAtSite, S::Infused])
        }
    };
    // A sample is never a duplicate (a collection has several tubes, none numbered) and may
    // arrive after its bags were received; it is never received as a bag.
    let (allowed, already_done): (Vec<S>, &[S]) = match item {
        Item::Bag(_) => (allowed.to_vec(), already_done),
        Item::Sample if ctx.step == Step::Receipt => (
            allowed
                .iter()
                .chain(already_done.first())
                .copied()
                .collect(),
            &[],
        ),
        Item::Sample => (allowed.to_vec(), &[]),
    };
    let received_here = match item {
        Item::Bag(bag) => ctx.step == Step::Receipt && ctx.received.contains(&(order.coi, bag)),
        Item::Sample => false,
    };
    if received_here || already_done.contains(&status) {
        return Err(refuse(
            Reason::AlreadyReceived,
            &format!(
                "{} of order {} was already received. Check for a duplicate label; call your supervisor.",
                capitalise(of),
                order.order_id
            ),
        ));
    }
    if !allowed.contains(&status) {
        return Err(refuse(
            Reason::WrongStatus,
            &format!(
                "Order {} is {}, so this {} should not be {} here now. Call your supervisor.",
                order.order_id,
                order.status.as_str().replace('_', " "),
                match item {
                    Item::Bag(_) => "bag",
                    Item::Sample => "sample",
                },
                match ctx.step {
                    Step::Verify => "labelled",
                    Step::Receipt => "received",
                }
            ),
        ));
    }
    Ok(())
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
