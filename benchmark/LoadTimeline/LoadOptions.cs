using System;

namespace LoadTimeline;

internal sealed class LoadOptions
{
    public required Uri Url { get; init; }

    public int Connections { get; init; } = 16;

    public LoadMode Mode { get; init; } = LoadMode.KeepAlive;

    public int Streams { get; init; } = 4;

    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan Interval { get; init; } = TimeSpan.FromMilliseconds(250);

    public TimeSpan Timeout { get; init; } = TimeSpan.FromMilliseconds(2000);

    public TimeSpan ErrorPause { get; init; } = TimeSpan.FromMilliseconds(10);

    public string? Out { get; init; }

    public bool InlineCompletions { get; init; } = true;

    public int Threads { get; init; } = 1;

    public bool Tls => Url.Scheme == Uri.UriSchemeHttps;

    public string ModeName => Mode switch
    {
        LoadMode.Churn => "churn",
        LoadMode.KeepAlive => "keepalive",
        _ => "h2",
    };
}
