//! Hand-written ClientHellos: the only way to ask a server whether it would
//! speak TLS 1.0, 1.1 or a CBC suite, since our own TLS library refuses to.
//! Only the first byte of the answer is read: 0x16 is a ServerHello (the
//! server agreed), an alert or a closed connection is a refusal.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, …_256_CBC_SHA, TLS_RSA_WITH_AES_128_CBC_SHA, …_256_CBC_SHA.
pub const CBC_SUITES: [[u8; 2]; 4] = [[0xc0, 0x13], [0xc0, 0x14], [0x00, 0x2f], [0x00, 0x35]];
/// ECDHE-ECDSA and ECDHE-RSA with AES-128-GCM.
pub const GCM_SUITES: [[u8; 2]; 2] = [[0xc0, 0x2b], [0xc0, 0x2f]];

/// A ClientHello with `version` in the hello, the given suites and no
/// supported_versions extension (as a TLS 1.0/1.1 client sends it); with a
/// host name, the server_name extension too.
pub fn client_hello(version: [u8; 2], suites: &[[u8; 2]], server_name: Option<&str>) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version);
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(s);
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    let mut ext = Vec::new();
    if let Some(name) = server_name.filter(|n| n.len() < 256 && n.parse::<std::net::IpAddr>().is_err()) {
        let n = name.as_bytes();
        let len = n.len() as u16;
        ext.extend_from_slice(&[0x00, 0x00]);
        ext.extend_from_slice(&(len + 5).to_be_bytes());
        ext.extend_from_slice(&(len + 3).to_be_bytes());
        ext.push(0); // host_name
        ext.extend_from_slice(&len.to_be_bytes());
        ext.extend_from_slice(n);
    }
    // supported_groups: x25519, secp256r1
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17]);
    // ec_point_formats: uncompressed
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
    ext.extend_from_slice(&[0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

/// What the server answered a hello with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A ServerHello: it agreed.
    Agreed,
    /// An alert or a closed connection.
    Refused,
}

/// Sends `hello` to `addr` and reads the first byte of the answer.
pub async fn probe(addr: &str, hello: &[u8]) -> Result<Answer, String> {
    let connect = tokio::net::TcpStream::connect(addr);
    let mut tcp = match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return Err(format!("cannot connect to {addr}: {e}")),
        Err(_) => return Err(format!("cannot connect to {addr}: timed out")),
    };
    tcp.write_all(hello).await.map_err(|e| format!("cannot write to {addr}: {e}"))?;
    let mut b = [0u8; 1];
    Ok(match tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut b)).await {
        Ok(Ok(1)) if b[0] == 0x16 => Answer::Agreed,
        _ => Answer::Refused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_is_one_well_formed_handshake_record() {
        for name in [None, Some("shop.example.com")] {
            let h = client_hello([3, 1], &CBC_SUITES, name);
            assert_eq!(&h[..3], &[0x16, 0x03, 0x01]);
            assert_eq!(u16::from_be_bytes([h[3], h[4]]) as usize, h.len() - 5, "record length");
            assert_eq!(h[5], 0x01, "ClientHello");
            let hs_len = u32::from_be_bytes([0, h[6], h[7], h[8]]) as usize;
            assert_eq!(hs_len, h.len() - 9, "handshake length");
        }
        let with_sni = client_hello([3, 3], &GCM_SUITES, Some("shop.example.com"));
        assert!(with_sni.windows(16).any(|w| w == b"shop.example.com"));
        assert!(!client_hello([3, 3], &GCM_SUITES, Some("10.0.0.1")).windows(8).any(|w| w == b"10.0.0.1"));
    }
}
