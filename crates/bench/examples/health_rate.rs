use omnibus_bench::drivers::http1::Http1;
use std::time::Instant;
#[tokio::main]
async fn main() {
    let address = std::env::args().nth(1).unwrap();
    let n: usize = 40000;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let address = address.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Http1::connect(&address).await.unwrap();
            for _ in 0..n / 4 {
                c.get("/health").await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!("{:.0} req/s", n as f64 / started.elapsed().as_secs_f64());
}
