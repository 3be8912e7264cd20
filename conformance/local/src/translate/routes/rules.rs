//! A rule's matches and timeout, read from the HTTPRoute.

use std::time::Duration;

use switchyard_api::httproute::{HttpHeaderMatch, HttpPathMatch, HttpRouteRule};
use switchyard_api::protocol::DESTINATION_ENDPOINT_HEADER;

use super::{HeaderCondition, PathMatch, RouteMatch};
use crate::translate::Warning;

/// The rule's `timeouts.request`; `timeouts.backendRequest` is warned about and ignored.
pub(super) fn rule_timeout(
    rule: &HttpRouteRule,
    object: &str,
    at: &str,
    problems: &mut Vec<String>,
    warnings: &mut Vec<Warning>,
) -> Option<Duration> {
    let timeouts = rule.extra.get("timeouts")?;
    if timeouts.get("backendRequest").is_some() {
        warnings.push(Warning {
            object: object.to_owned(),
            message: format!(
                "{at}.timeouts.backendRequest is ignored by the local gateway (requests are not \
                 retried); timeouts.request applies"
            ),
        });
    }
    let request = timeouts.get("request")?;
    match request.as_str().and_then(parse_gateway_duration) {
        Some(duration) => Some(duration),
        None => {
            problems.push(format!(
                "{object}: {at}.timeouts.request is {request}, not a Gateway API duration: \
                 write e.g. 300s, 5m or 1h30m (0s for none)"
            ));
            None
        }
    }
}

/// A Gateway API duration: one to four `<number><unit>` parts, units `h`, `m`, `s`, `ms`,
/// numbers of at most five digits (GEP-2257).
pub(crate) fn parse_gateway_duration(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut total = Duration::ZERO;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 5 {
            return None;
        }
        let (number, after) = rest.split_at(digits);
        let number: u64 = number.parse().ok()?;
        let (unit, after) = if let Some(after) = after.strip_prefix("ms") {
            (Duration::from_millis(1), after)
        } else if let Some(after) = after.strip_prefix('h') {
            (Duration::from_secs(3600), after)
        } else if let Some(after) = after.strip_prefix('m') {
            (Duration::from_secs(60), after)
        } else if let Some(after) = after.strip_prefix('s') {
            (Duration::from_secs(1), after)
        } else {
            return None;
        };
        total += unit * u32::try_from(number).ok()?;
        parts += 1;
        rest = after;
    }
    (1..=4).contains(&parts).then_some(total)
}

/// The rule's matches; none means every request (`PathPrefix /`).
pub(super) fn rule_matches(
    rule: &HttpRouteRule,
    object: &str,
    at: &str,
    problems: &mut Vec<String>,
) -> Vec<RouteMatch> {
    let catch_all = || RouteMatch {
        path: PathMatch::Prefix("/".to_owned()),
        headers: Vec::new(),
        method: None,
        destination_present: false,
    };
    if rule.matches().is_empty() {
        return vec![catch_all()];
    }
    let mut out = Vec::new();
    for (index, m) in rule.matches().iter().enumerate() {
        let at = format!("{at}.matches[{index}]");
        if m.extra.contains_key("queryParams") {
            problems.push(format!(
                "{object}: {at}.queryParams is not supported by the local gateway: match on \
                 a header or the path instead"
            ));
            continue;
        }
        let path = match m.path.as_ref().map(|p| path_match(p, &at)) {
            None => PathMatch::Prefix("/".to_owned()),
            Some(Ok(path)) => path,
            Some(Err(problem)) => {
                problems.push(format!("{object}: {problem}"));
                continue;
            }
        };
        let mut headers = Vec::new();
        for (h, header) in m.headers.as_deref().unwrap_or_default().iter().enumerate() {
            match header_condition(header, &format!("{at}.headers[{h}]")) {
                Ok(condition) => headers.push(condition),
                Err(problem) => problems.push(format!("{object}: {problem}")),
            }
        }
        out.push(RouteMatch {
            path,
            headers,
            method: m.method.clone(),
            destination_present: false,
        });
    }
    out
}

fn path_match(path: &HttpPathMatch, at: &str) -> Result<PathMatch, String> {
    let value = path.value.clone().unwrap_or_else(|| "/".to_owned());
    let kind = path.type_.as_deref().unwrap_or("PathPrefix");
    // Gateway API's CRD requires this; Envoy would reject the whole route table without it.
    let literal = kind == "Exact" || kind == "PathPrefix";
    if literal && (!value.starts_with('/') || value.contains(['?', '#', ' '])) {
        return Err(format!(
            "{at}.path.value {value:?} must be an absolute path without query or fragment: \
             write e.g. /v1/chat/completions"
        ));
    }
    match kind {
        "Exact" => Ok(PathMatch::Exact(value)),
        "PathPrefix" => {
            // Gateway API ignores a trailing slash: `/v1/` and `/v1` match the same paths.
            let trimmed = value.trim_end_matches('/');
            Ok(PathMatch::Prefix(if trimmed.is_empty() {
                "/".to_owned()
            } else {
                trimmed.to_owned()
            }))
        }
        "RegularExpression" => Ok(PathMatch::Regex(value)),
        other => Err(format!(
            "{at}.path.type {other:?} is not a path match type: write Exact, PathPrefix or \
             RegularExpression"
        )),
    }
}

fn header_condition(header: &HttpHeaderMatch, at: &str) -> Result<HeaderCondition, String> {
    let regex = match header.type_.as_deref().unwrap_or("Exact") {
        "Exact" => false,
        "RegularExpression" => true,
        other => {
            return Err(format!(
                "{at}.type {other:?} is not a header match type: write Exact or RegularExpression"
            ));
        }
    };
    let name = header.name.to_ascii_lowercase();
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!(
            "{at}.name {:?} is not an HTTP header name: use letters, digits and dashes, e.g. \
             X-Gateway-Model-Name",
            header.name
        ));
    }
    if name == DESTINATION_ENDPOINT_HEADER {
        return Err(format!(
            "{at}.name {DESTINATION_ENDPOINT_HEADER} is the endpoint picker's answer and cannot \
             select a route: match on the model header instead"
        ));
    }
    Ok(HeaderCondition {
        name,
        value: header.value.clone(),
        regex,
    })
}
