namespace Kestrel.ReusePort.Internal.Drain;

internal static class DrainOutcomeExtensions
{
    /// <summary>The value of the <c>kestrel.reuseport.drain.outcome</c> attribute.</summary>
    public static string ToAttributeValue(this DrainOutcome outcome) => outcome switch
    {
        DrainOutcome.ConnectionClose => "connection_close",
        DrainOutcome.GoAway => "goaway",
        DrainOutcome.ClientClosed => "client_closed",
        DrainOutcome.ClosedIdle => "closed_idle",
        _ => "aborted",
    };
}
