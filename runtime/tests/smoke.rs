use std::time::Duration;

#[test]
fn spawn_sleep_nop() {
    let out = percore_runtime::run(async {
        let h = percore_runtime::spawn(async { 1 + 1 });
        percore_runtime::time::sleep(Duration::from_millis(3)).await;
        let n = percore_runtime::Op::new(percore_runtime::op::Nop::new()).await.unwrap();
        h.await.unwrap() + n
    })
    .unwrap();
    assert_eq!(out, 2);
}
