//! Which Prometheus servers the controller may query
//! (`--prometheus-allowed-addresses`).
//!
//! A rollout's `prometheus.address` is written by whoever may create
//! InferenceRollouts in a namespace, but the controller sends the query from
//! its own network position: without a list, any namespace user could make it
//! POST to internal hosts that NetworkPolicies keep them from (a port and host
//! scanner). The operator lists the servers once; everything else is refused
//! before a connection is opened.

/// The allowed servers: each entry a scheme, host and port, plus a path
/// prefix the address must sit under.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedAddresses {
    /// `None`: any address (local mode, where the manifests are one's own).
    entries: Option<Vec<Entry>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    scheme: String,
    host: String,
    port: u16,
    path: String,
}

/// The flag's name, for messages.
pub const FLAG: &str = "--prometheus-allowed-addresses";

impl AllowedAddresses {
    /// Every address allowed: local mode only.
    pub fn any() -> Self {
        Self { entries: None }
    }

    /// The flag's entries (`http://host[:port][/prefix]`); an error names the bad one.
    pub fn parse(list: &[String]) -> Result<Self, String> {
        let entries = list
            .iter()
            .map(|text| text.trim())
            .filter(|text| !text.is_empty())
            .map(|text| {
                parse_address(text).ok_or_else(|| {
                    format!("{FLAG}: {text:?} is not an address like http://prometheus.monitoring.svc:9090")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            entries: Some(entries),
        })
    }

    /// Whether `address` (a rollout's `prometheus.address`) may be queried:
    /// same scheme, host and port as an entry, and a path under its prefix.
    pub fn permits(&self, address: &str) -> bool {
        let Some(entries) = &self.entries else {
            return true;
        };
        let Some(wanted) = parse_address(address) else {
            return false;
        };
        entries.iter().any(|entry| {
            entry.scheme == wanted.scheme
                && entry.host == wanted.host
                && entry.port == wanted.port
                && (entry.path.is_empty()
                    || wanted.path == entry.path
                    || wanted.path.starts_with(&format!("{}/", entry.path)))
        })
    }

    /// Why `address` is refused: names the flag and the chart value, never
    /// anything learnt from the address itself.
    pub fn refusal(&self, address: &str) -> String {
        let configured = match &self.entries {
            Some(entries) if !entries.is_empty() => "it is not among",
            _ => "none are configured in",
        };
        format!(
            "Prometheus address {address:?} is not allowed: the controller queries only the servers listed in {FLAG} ({configured} it); ask its operator to add it (chart value analysis.prometheusAllowedAddresses)"
        )
    }
}

/// Scheme, lower-cased host, port (default for the scheme) and the path
/// without its trailing `/`; `None` for anything else (user info, query,
/// fragment, no host).
fn parse_address(text: &str) -> Option<Entry> {
    let uri: http::Uri = text.trim_end_matches('/').parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = uri.authority()?;
    if authority.as_str().contains('@') || uri.query().is_some() {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    Some(Entry {
        scheme,
        host,
        port: authority.port_u16().unwrap_or(default_port),
        path: uri.path().trim_end_matches('/').to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::AllowedAddresses;

    fn allowed(list: &[&str]) -> AllowedAddresses {
        AllowedAddresses::parse(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn m3_only_listed_servers_are_allowed() {
        let list = allowed(&[
            "http://prometheus.monitoring.svc:9090",
            "http://thanos.obs.svc/tenant-a",
        ]);
        for ok in [
            "http://prometheus.monitoring.svc:9090",
            "http://Prometheus.monitoring.svc:9090/",
            "http://thanos.obs.svc:80/tenant-a",
            "http://thanos.obs.svc/tenant-a/prom",
        ] {
            assert!(list.permits(ok), "{ok}");
        }
        for refused in [
            "http://prometheus.monitoring.svc:9091",
            "http://prometheus.monitoring.svc.evil.example:9090",
            "http://kubernetes.default.svc:443",
            "http://169.254.169.254/latest/meta-data",
            "http://thanos.obs.svc/tenant-ab",
            "http://thanos.obs.svc/",
            "http://user@prometheus.monitoring.svc:9090",
            "not a url",
        ] {
            assert!(!list.permits(refused), "{refused}");
        }
    }

    #[test]
    fn m3_an_empty_list_refuses_everything_and_says_which_flag_to_set() {
        let none = allowed(&[]);
        assert!(!none.permits("http://prometheus.monitoring.svc:9090"));
        let message = none.refusal("http://10.0.0.1:8080");
        assert!(
            message.contains("--prometheus-allowed-addresses"),
            "{message}"
        );
        assert!(AllowedAddresses::any().permits("http://10.0.0.1:8080"));
        assert!(AllowedAddresses::parse(&["ftp://x".into()]).is_err());
    }
}
