using System.Net;
using Kestrel.ReusePort.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Kestrel.ReusePort.Tests;

/// <summary>
/// sample/rolling-deploy.sh, as an operator runs it for every deploy: it waits for the new instance's READY=1 (warm and
/// accepting), then stops the old one. Under load, nothing fails.
/// </summary>
public class RollingDeployScriptTests(ITestOutputHelper output)
{
    private const int Deploys = 3;

    [Fact]
    public async Task EachRunWaitsUntilTheNewInstanceIsReadyThenStopsTheOldOneAndNothingFails()
    {
        var port = PortAllocator.GetFreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        var work = Directory.CreateTempSubdirectory("kestrel-reuseport-deploy-").FullName;
        var pidfile = Path.Join(work, "app.pid");
        LoadGenerator? load = null;
        try
        {
            var previous = 0;
            for (var deploy = 0; deploy <= Deploys; deploy++)
            {
                using var script = ChildProcess.Start(new ChildProcessStartInfo
                {
                    FileName = "bash",
                    Arguments = [Path.Join(RepoPaths.Root, "sample", "rolling-deploy.sh"), "--pidfile", pidfile, "--log", Path.Join(work, $"instance-{deploy}.log"), "--",
                        RepoPaths.DotnetHost, RepoPaths.SampleAssembly, "--urls", $"http://127.0.0.1:{port}", "--ReusePort:ListenerCount=2"],
                    WorkingDirectory = RepoPaths.SampleDirectory,
                    Name = $"rolling-deploy.sh, run {deploy}",
                });
                Assert.Equal(0, await script.WaitForExitAsync(TimeSpan.FromSeconds(90)));
                output.WriteLine(script.Output);

                var current = int.Parse(File.ReadAllText(pidfile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
                Assert.Contains($"new instance {current} is ready: Serving 127.0.0.1:{port} with", script.Output, StringComparison.Ordinal);
                if (previous != 0)
                {
                    Assert.Contains($"with sockets taken over from process {previous}", script.Output, StringComparison.Ordinal);
                    Assert.Contains($"old instance {previous} stopped", script.Output, StringComparison.Ordinal);
                    Assert.False(ProcessState.IsRunning(previous), $"the old instance {previous} still runs");
                }

                Assert.Equal(2, ListeningSockets.HeldBy(current, port).Count);
                previous = current;
                if (load is null)
                {
                    load = LoadGenerator.Start(endPoint, LoadMode.Churn);
                }

                await load.WaitForMoreRequestsAsync(100, TimeSpan.FromSeconds(30));
            }

            var result = await load!.StopAsync();
            output.WriteLine($"{Deploys} deploys with rolling-deploy.sh: {result}");
            Assert.True(result.Errors == 0 && result.Non2xx == 0, result.ToString());
        }
        finally
        {
            if (load is not null)
            {
                await load.DisposeAsync();
            }

            if (File.Exists(pidfile) && int.TryParse(File.ReadAllText(pidfile).Trim(), out var last))
            {
                LibC.Kill(last, LibC.SigTerm);
                await Eventually.UntilAsync(() => !ProcessState.IsRunning(last), TimeSpan.FromSeconds(40), "the last instance to exit");
            }

            Directory.Delete(work, recursive: true);
        }
    }
}
