namespace LoadTimeline;

internal enum LoadMode
{
    Churn,
    KeepAlive,
    H2,
}
