use std::{
    io::{Read as _, Write as _},
    net::IpAddr,
    time::Duration,
};

use super::*;

const STRICT: FetchPolicy = FetchPolicy {
    allow_insecure: false,
};
const INSECURE: FetchPolicy = FetchPolicy {
    allow_insecure: true,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn internal_addresses_are_not_public() {
    for internal in [
        "0.0.0.0",
        "0.1.2.3",
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "192.0.0.8",
        "198.18.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "::",
        "::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::10.0.0.1",
        "64:ff9b::a00:1",
        "2002:a00:1::1",
        "2002:7f00:1::1",
    ] {
        assert!(!is_public(ip(internal)), "{internal} is internal");
    }
}

#[test]
fn internet_addresses_are_public() {
    for public in [
        "1.1.1.1",
        "8.8.8.8",
        "172.32.0.1",
        "100.128.0.1",
        "192.169.0.1",
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",
    ] {
        assert!(is_public(ip(public)), "{public} is public");
    }
}

#[test]
fn the_insecure_flag_allows_loopback_but_never_private_ranges() {
    for loopback in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
        assert!(INSECURE.allows_ip(ip(loopback)));
        assert!(!STRICT.allows_ip(ip(loopback)));
    }
    for private in ["10.0.0.1", "192.168.0.1", "169.254.169.254", "fd00::1"] {
        assert!(!INSECURE.allows_ip(ip(private)), "{private}");
    }
}

#[test]
fn urls_must_be_https_to_a_public_host() {
    let check = |policy: FetchPolicy, url: &str| policy.check_url(&Url::parse(url).unwrap());
    assert!(check(STRICT, "https://acme.okta.com").is_ok());
    assert!(check(STRICT, "https://8.8.8.8/jwks").is_ok());
    for refused in [
        "http://acme.okta.com",
        "http://127.0.0.1:8080",
        "https://127.0.0.1",
        "https://[::1]/",
        "https://10.0.0.1",
        "https://169.254.169.254/latest",
        "https://[::ffff:a00:1]/",
        "https://user:pw@acme.okta.com",
        "ftp://acme.okta.com",
    ] {
        assert!(check(STRICT, refused).is_err(), "{refused}");
    }
    assert!(check(INSECURE, "http://127.0.0.1:8080").is_ok());
    assert!(check(INSECURE, "http://localhost:8080").is_ok());
    assert!(check(INSECURE, "https://[::1]:8443").is_ok());
    assert!(check(INSECURE, "http://acme.okta.com").is_err());
    assert!(check(INSECURE, "http://10.0.0.1").is_err());
}

/// A one-shot HTTP server on loopback answering `answer`.
fn serve_once(answer: Vec<u8>) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.read(&mut [0u8; 2048]);
        let _ = stream.write_all(&answer);
    });
    (addr, server)
}

/// A redirect from a discovery or keys URL is an error, never a request elsewhere.
#[tokio::test]
async fn the_idp_client_never_follows_a_redirect() {
    let (addr, server) = serve_once(
        b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_vec(),
    );
    let http = IdpHttp::new(Duration::from_secs(5), INSECURE);
    let request = reqwest::Request::new(
        reqwest::Method::GET,
        format!("http://{addr}/jwks").parse().unwrap(),
    );

    let answer = http.send(request).await.expect("one request, answered");

    assert_eq!(answer.status(), 302, "not followed");
    server.join().unwrap();
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused() {
    let mut answer =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n".to_vec();
    answer.extend(std::iter::repeat_n(b' ', MAX_BODY_BYTES + 1));
    let (addr, server) = serve_once(answer);
    let http = IdpHttp::new(Duration::from_secs(5), INSECURE);

    let refused = http
        .get_json::<serde_json::Value>(&format!("http://{addr}/jwks"))
        .await
        .unwrap_err();

    assert!(refused.to_string().contains("larger than"), "{refused}");
    server.join().unwrap();
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_never_connected_to_without_the_flag() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let http = IdpHttp::new(Duration::from_secs(5), STRICT);

    let refused = http
        .get_json::<serde_json::Value>(&format!("https://localhost:{port}/jwks"))
        .await
        .unwrap_err();

    assert!(
        refused.to_string().contains("resolves to no address"),
        "{refused}"
    );
    assert!(listener.accept().is_err(), "no connection was made");
}
