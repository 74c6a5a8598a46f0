//! A loader's first steps on many hosts: bind a socket on loopback and talk
//! to itself, and find a second interface up (the guest's test interface,
//! `dummy0`). Shipped into guests by the end-to-end tests (command mode);
//! exits 0 when both hold, 1 with the reason otherwise.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    if let Err(e) = echo() {
        eprintln!("lo-echo: {e}");
        std::process::exit(1);
    }
    println!("lo-echo: 127.0.0.1 works");
    match std::fs::read_to_string("/sys/class/net/dummy0/flags") {
        // IFF_UP is bit 0 of the flags, printed in hex.
        Ok(f)
            if u32::from_str_radix(f.trim().trim_start_matches("0x"), 16)
                .is_ok_and(|v| v & 1 == 1) =>
        {
            println!("lo-echo: dummy0 is up");
        }
        other => {
            eprintln!("lo-echo: dummy0 is not up: {other:?}");
            std::process::exit(1);
        }
    }
}

fn echo() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (mut server, _) = listener.accept()?;
    client.write_all(b"x")?;
    let mut byte = [0u8; 1];
    server.read_exact(&mut byte)?;
    Ok(())
}
