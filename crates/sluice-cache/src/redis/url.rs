//! `redis[s]://[[user]:password@]host[:port][/db]` checking, with messages that name the
//! wrong part, and masking passwords for messages. The `redis` crate parses the URL again to
//! connect; this check exists for its messages and to know the address and scheme.

use crate::error::CacheError;

const DEFAULT_PORT: u16 = 6379;

/// Where and how to connect: the parsed form of a Redis URL.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RedisUrl {
    pub host: String,
    pub port: u16,
    pub username: Option<Vec<u8>>,
    pub password: Option<Vec<u8>>,
    pub db: u32,
    /// `rediss://`: TLS.
    pub tls: bool,
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "username",
                &self.username.as_deref().map(String::from_utf8_lossy),
            )
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .field("tls", &self.tls)
            .finish()
    }
}

impl RedisUrl {
    /// `host:port`, with brackets around an IPv6 address; what `TcpStream::connect` takes.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parses a Redis URL; errors say which part was wrong and never echo the password.
pub(crate) fn parse(url: &str) -> Result<RedisUrl, CacheError> {
    let bad = |message: String| CacheError::BadUrl {
        url: redact(url),
        message,
    };
    let (tls, rest) = match url.split_once("://") {
        Some(("redis", rest)) => (false, rest),
        Some(("rediss", rest)) => (true, rest),
        Some((scheme, _)) => {
            return Err(bad(format!(
                "expected scheme `redis://` or `rediss://` (tls), found `{scheme}://`"
            )))
        }
        None => {
            return Err(bad(
                "expected a url starting with `redis://` or `rediss://`".into(),
            ))
        }
    };
    if rest.contains(['?', '#']) {
        return Err(bad(
            "expected no query string or fragment after the database number".into(),
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let Some((user, pass)) = u.split_once(':') else {
                return Err(bad(
                    "expected `:password@` or `user:password@` before the host, found no `:`"
                        .into(),
                ));
            };
            let user = (!user.is_empty())
                .then(|| {
                    percent_decode(user)
                        .ok_or_else(|| bad("bad percent-encoding in the user name".into()))
                })
                .transpose()?;
            let pass = percent_decode(pass)
                .ok_or_else(|| bad("bad percent-encoding in the password".into()))?;
            (user, Some(pass))
        }
    };
    let (host, port) = split_host_port(hostport).map_err(bad)?;
    let db = match path.strip_prefix('/').unwrap_or(path) {
        "" => 0,
        n => n
            .parse::<u32>()
            .map_err(|_| bad(format!("expected a database number after `/`, found `{n}`")))?,
    };
    Ok(RedisUrl {
        host,
        port,
        username,
        password,
        db,
        tls,
    })
}

fn split_host_port(hostport: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err(format!(
                "expected `]` closing the ipv6 address, found `{hostport}`"
            ));
        };
        match after {
            "" => (host, None),
            p => match p.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return Err(format!("expected `:port` after `]`, found `{p}`")),
            },
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("expected a host after `://`, found none".into());
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(format!("expected a port number 1-65535, found `{p}`")),
        },
    };
    Ok((host.to_owned(), port))
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The URL with any password replaced by `***`, for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(url: &str) -> String {
        match parse(url) {
            Err(e) => e.to_string(),
            Ok(u) => panic!("expected an error for {url}, parsed {u:?}"),
        }
    }

    #[test]
    fn plain_url_defaults_port_and_db() {
        let u = parse("redis://127.0.0.1").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("127.0.0.1", 6379, 0));
        assert_eq!((u.username, u.password), (None, None));
        assert_eq!(
            parse("redis://localhost:7000/").unwrap().addr(),
            "localhost:7000"
        );
    }

    #[test]
    fn password_user_and_db_are_read() {
        let u = parse("redis://:s%40cret@cache.internal:6380/3").unwrap();
        assert_eq!(u.password.as_deref(), Some(&b"s@cret"[..]));
        assert_eq!(u.username, None);
        assert_eq!((u.port, u.db), (6380, 3));
        let u = parse("redis://app:pw@[::1]:6000/1").unwrap();
        assert_eq!(u.username.as_deref(), Some(&b"app"[..]));
        assert_eq!(u.addr(), "[::1]:6000");
        assert!(!u.tls);
    }

    #[test]
    fn rediss_means_tls() {
        let u = parse("rediss://:pw@cache.example:6380").unwrap();
        assert!(u.tls);
        assert_eq!(u.addr(), "cache.example:6380");
    }

    #[test]
    fn errors_name_the_wrong_part_and_hide_the_password() {
        assert!(message("http://h").contains("found `http://`"));
        assert!(message("127.0.0.1:6379").contains("starting with `redis://`"));
        assert!(message("redis://h:99999").contains("found `99999`"));
        assert!(message("redis://h:0").contains("found `0`"));
        assert!(message("redis://h/x").contains("database number after `/`, found `x`"));
        assert!(message("redis://:pw@").contains("expected a host"));
        assert!(message("redis://h?db=1").contains("query string"));
        assert!(message("redis://pw@h").contains("found no `:`"));
        let e = message("redis://:hunter2@h:bad");
        assert!(e.contains("redis://:***@h:bad"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn debug_hides_the_password() {
        let u = parse("redis://:hunter2@h").unwrap();
        assert!(!format!("{u:?}").contains("hunter2"));
    }
}
