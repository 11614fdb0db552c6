fn main() { println!("lockstep {}", env!("CARGO_PKG_VERSION")); }
