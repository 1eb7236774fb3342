namespace Kestrel.ReusePort.Tests.Infrastructure;

/// <summary>What a <see cref="LoadGenerator"/> saw.</summary>
public sealed record LoadResult(long Requests, long Errors, long Non2xx, IReadOnlyDictionary<int, long> RequestsByPid, IReadOnlyList<string> FirstErrors)
{
    public override string ToString() =>
        $"{Requests} requests, {Errors} errors, {Non2xx} non-2xx; by pid: {string.Join(", ", RequestsByPid.Select(p => $"{p.Key}={p.Value}"))}" +
        (FirstErrors.Count == 0 ? string.Empty : "\nfirst errors:\n  " + string.Join("\n  ", FirstErrors));
}
