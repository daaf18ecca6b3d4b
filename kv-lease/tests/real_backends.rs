#[tokio::test]
async fn placeholder() {}
