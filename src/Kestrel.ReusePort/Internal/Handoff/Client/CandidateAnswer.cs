using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Net.Sockets;

namespace Kestrel.ReusePort.Internal.Handoff.Client;

/// <summary>
/// How one running instance answered a starting one: it handed its sockets over; it was not there or is leaving (ask
/// again); or it failed, for a reason that stops the handoff.
/// </summary>
internal readonly record struct CandidateAnswer
{
    private CandidateAnswer(List<Socket>? sockets, Predecessor? predecessor, string? failure, string? errorType)
    {
        Sockets = sockets;
        Predecessor = predecessor;
        Failure = failure;
        ErrorType = errorType;
    }

    /// <summary>Nobody listens there, or the instance is leaving: whoever holds the sockets next listens there shortly.</summary>
    public static CandidateAnswer Absent => default;

    public List<Socket>? Sockets { get; }

    public Predecessor? Predecessor { get; }

    /// <summary>Why the handoff cannot go on with this instance, for the log; null unless it failed.</summary>
    public string? Failure { get; }

    /// <summary>The <c>error.type</c> of the handoff's measurement; null unless it failed.</summary>
    public string? ErrorType { get; }

    [MemberNotNullWhen(true, nameof(Sockets), nameof(Predecessor))]
    public bool IsTakenOver => Sockets is not null;

    public static CandidateAnswer TakenOver(List<Socket> sockets, Predecessor predecessor) => new(sockets, predecessor, null, null);

    public static CandidateAnswer Failed(string failure, string errorType) => new(null, null, failure, errorType);
}
