// memdx_tracee_rust_v0 and memdx_tracee_rust_legacy: the site analysis on a Rust program, built
// by rustc with each symbol mangling (CMakeLists.txt). A user method pushes formatted records into
// a Vec that is never trimmed (the String is made by std's format_inner, the Vec grows in
// alloc::raw_vec: the site must be the method's own line), and a bounded cache keeps 64 entries.
// Runs for the seconds given (default 3), a record every 5 ms.
// Lines the report must name end in "// site: FUNCTION".
use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

struct CallTracer {
    calls: Vec<String>,
}

impl CallTracer {
    #[inline(never)]
    fn record(&mut self, n: u64) {
        self.calls.push(format!("call {:>8192}", n)); // site: record
    }
}

struct ResponseCache {
    entries: HashMap<u64, Vec<u8>>,
    order: Vec<u64>,
}

impl ResponseCache {
    #[inline(never)]
    fn store(&mut self, n: u64) {
        self.entries.insert(n, vec![(n % 251) as u8; 4096]); // site: store
        self.order.push(n);
        if self.order.len() > 64 {
            let oldest = self.order.remove(0);
            self.entries.remove(&oldest);
        }
    }
}

fn main() {
    let seconds: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let mut tracer = CallTracer { calls: Vec::new() };
    let mut cache = ResponseCache { entries: HashMap::new(), order: Vec::new() };
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        tracer.record(n);
        cache.store(n);
        n += 1;
        thread::sleep(Duration::from_millis(5));
    }
    println!("{} calls", tracer.calls.len());
}
