//! A loader's first step on many hosts: bind a socket on loopback and talk
//! to itself. Shipped into guests by the end-to-end tests (command mode);
//! exits 0 when a byte went round, 1 with the reason otherwise.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    if let Err(e) = echo() {
        eprintln!("lo-echo: {e}");
        std::process::exit(1);
    }
    println!("lo-echo: 127.0.0.1 works");
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
