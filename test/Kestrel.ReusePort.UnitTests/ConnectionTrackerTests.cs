using System.Diagnostics.Metrics;
using Kestrel.ReusePort.Internal.Diagnostics;
using Kestrel.ReusePort.Internal.Drain;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace Kestrel.ReusePort.UnitTests;

/// <summary>The drain's view of connections: open and busy counts, and how each connection open at the drain ended.</summary>
public sealed class ConnectionTrackerTests : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly IMeterFactory _meterFactory;
    private readonly ConnectionTracker _tracker;
    private readonly MetricCollector<long> _ended;

    public ConnectionTrackerTests()
    {
        _meterFactory = _services.GetRequiredService<IMeterFactory>();
        _tracker = new ConnectionTracker(new ReusePortMetrics(_meterFactory, () => []));
        _ended = new MetricCollector<long>(_meterFactory, ReusePortMetrics.MeterName, "kestrel.reuseport.drain.connections");
    }

    [Fact]
    public void OpenAndBusyConnectionsAreCounted()
    {
        var (first, closeFirst) = Accept();
        var (_, _) = Accept();
        Assert.Equal(2, _tracker.OpenConnections);

        var tracked = first.Features.Get<TrackedConnection>()!;
        tracked.RequestStarted();
        tracked.RequestStarted();
        Assert.Equal(1, _tracker.BusyConnections);
        tracked.RequestEnded();
        Assert.Equal(1, _tracker.BusyConnections);
        tracked.RequestEnded();
        Assert.Equal(0, _tracker.BusyConnections);

        closeFirst.Cancel();
        Assert.Equal(1, _tracker.OpenConnections);
    }

    [Fact]
    public void ConnectionsThatEndBeforeTheDrainAreNotCounted()
    {
        var (_, close) = Accept();
        close.Cancel();

        Assert.False(_tracker.IsDraining);
        Assert.Empty(_ended.GetMeasurementSnapshot());
        Assert.All(Enum.GetValues<DrainOutcome>(), outcome => Assert.Equal(0, _tracker.Ended(outcome)));
    }

    [Fact]
    public void DuringTheDrainEachConnectionIsCountedByWhatItWasTold()
    {
        var (toldClose, closeToldClose) = Accept();
        var (toldGoAway, closeToldGoAway) = Accept();
        var (_, closeSilent) = Accept();

        _tracker.BeginDrain();
        Assert.True(_tracker.IsDraining);
        toldClose.Features.Get<TrackedConnection>()!.ToldConnectionClose();
        _ = toldGoAway.Features.Get<TrackedConnection>()!.GoAway(() => Task.CompletedTask);
        closeToldClose.Cancel();
        closeToldGoAway.Cancel();
        closeSilent.Cancel();

        Assert.Equal(0, _tracker.OpenConnections);
        Assert.Equal(1, _tracker.Ended(DrainOutcome.ConnectionClose));
        Assert.Equal(1, _tracker.Ended(DrainOutcome.GoAway));
        Assert.Equal(1, _tracker.Ended(DrainOutcome.ClientClosed));
        Assert.Equal(
            ["connection_close", "goaway", "client_closed"],
            _ended.GetMeasurementSnapshot().Select(m => (string)m.Tags[ReusePortMetrics.DrainOutcomeAttribute]!));
    }

    [Fact]
    public void PastTheDrainTimeoutIdleConnectionsAreClosedIdleAndRunningRequestsAborted()
    {
        var (idle, closeIdle) = Accept();
        var (running, closeRunning) = Accept();
        var (finishing, closeFinishing) = Accept();
        running.Features.Get<TrackedConnection>()!.RequestStarted();
        finishing.Features.Get<TrackedConnection>()!.RequestStarted();

        _tracker.BeginDrain();
        Assert.Equal((3L, 2L), _tracker.EndDrainAtTimeout());
        Assert.True(_tracker.IsPastDrainTimeout);

        // A request that finishes during Kestrel's shutdown leaves its connection counted as told to close.
        finishing.Features.Get<TrackedConnection>()!.RequestEnded();
        closeFinishing.Cancel();
        closeIdle.Cancel();
        closeRunning.Cancel();

        Assert.Equal(1, _tracker.Ended(DrainOutcome.ConnectionClose));
        Assert.Equal(1, _tracker.Ended(DrainOutcome.ClosedIdle));
        Assert.Equal(1, _tracker.Ended(DrainOutcome.Aborted));
        Assert.Equal(0, _tracker.EndedBeforeDrainTimeout(DrainOutcome.ConnectionClose));
        Assert.Null(idle.Features.Get<TrackedConnection>()!.Told);
    }

    [Fact]
    public void WhatEndedBeforeTheDrainTimeoutIsKeptApart()
    {
        var (early, closeEarly) = Accept();
        var (_, closeLate) = Accept();
        _tracker.BeginDrain();
        early.Features.Get<TrackedConnection>()!.ToldConnectionClose();
        closeEarly.Cancel();

        _tracker.EndDrainAtTimeout();
        closeLate.Cancel();

        Assert.Equal(1, _tracker.EndedBeforeDrainTimeout(DrainOutcome.ConnectionClose));
        Assert.Equal(1, _tracker.Ended(DrainOutcome.ClosedIdle));
    }

    [Fact]
    public async Task AConnectionSendsOneGoAwayHoweverManyRequestsAskForIt()
    {
        var (connection, _) = Accept();
        var tracked = connection.Features.Get<TrackedConnection>()!;
        var sends = 0;
        var sent = new TaskCompletionSource();
        Task Send()
        {
            Interlocked.Increment(ref sends);
            return sent.Task;
        }

        tracked.RequestStarted();
        tracked.RequestStarted();
        var first = tracked.GoAwayAsync(Send, CancellationToken.None);
        var second = tracked.GoAwayAsync(Send, CancellationToken.None);

        // Held requests are not executing: the quiet GOAWAY waits only for the others.
        Assert.Equal(0, tracked.ExecutingRequests);
        Assert.False(first.IsCompleted);

        sent.SetResult();
        await Task.WhenAll(first, second);
        Assert.Equal(1, sends);
        Assert.Equal(DrainOutcome.GoAway, tracked.Told);
    }

    [Fact]
    public void AClientHasReadEveryResponseOnceTheDrainHoldsAsManyStreamsAsItEverKeptInFlight()
    {
        var (connection, _) = Accept();
        var tracked = connection.Features.Get<TrackedConnection>()!;
        var goAway = new TaskCompletionSource();

        // A client that keeps two streams in flight: one of them ends before the drain, and its replacement arrives
        // during it, while the other one ends during the drain. That is one stream opened for one ended during the
        // drain, yet the client has not answered the second response: it has not read it.
        tracked.RequestStarted();
        tracked.RequestStarted();
        tracked.RequestEnded();
        _tracker.BeginDrain();
        tracked.RequestStarted();
        _ = tracked.GoAwayAsync(() => goAway.Task, CancellationToken.None);
        tracked.RequestEnded();
        Assert.False(tracked.HoldsAllItsClientKeepsInFlight);

        // It read the second response: it opened the next stream, which the drain holds too.
        tracked.RequestStarted();
        _ = tracked.GoAwayAsync(() => goAway.Task, CancellationToken.None);
        Assert.True(tracked.HoldsAllItsClientKeepsInFlight);
        goAway.SetResult();
    }

    [Fact]
    public async Task AQuietGoAwayWhoseClientDoesNotComeBackIsSentAtTheMaximum()
    {
        var (connection, _) = Accept();
        var tracked = connection.Features.Get<TrackedConnection>()!;

        // Two streams in flight once; during the drain one comes back and is held, and the other never does.
        tracked.RequestStarted();
        tracked.RequestStarted();
        tracked.RequestEnded();
        tracked.RequestEnded();
        _tracker.BeginDrain();
        tracked.RequestStarted();
        var held = tracked.GoAwayAsync(() => QuietGoAway.SendAsync(tracked, lifetime: null, GoAwayGrace.Minimum), CancellationToken.None);

        // Quiet for a grace, yet not all back: it waits, up to the maximum, and never fails the held stream.
        await held.WaitAsync(GoAwayGrace.Maximum * 10);
        Assert.True(held.IsCompletedSuccessfully);
    }

    public void Dispose()
    {
        _ended.Dispose();
        _services.Dispose();
    }

    private (ConnectionContext Connection, CancellationTokenSource Close) Accept()
    {
        var close = new CancellationTokenSource();
        var connection = new DefaultConnectionContext(Guid.NewGuid().ToString()) { ConnectionClosed = close.Token };
        _tracker.Track(connection);
        return (connection, close);
    }
}
