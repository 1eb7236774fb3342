using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks;

namespace Kestrel.ReusePort.Benchmarks;

/// <summary>Opens client connections in batches and closes each once it is connected.</summary>
internal static class LoopbackClients
{
    public static async Task ConnectAndCloseAsync(EndPoint endpoint, int connections)
    {
        // Batches keep the number of connections in flight below the listen backlog, so none is refused.
        const int batch = 64;
        var clients = new List<Socket>(batch);
        for (var done = 0; done < connections; done += batch)
        {
            var tasks = new List<Task>(batch);
            for (var i = 0; i < Math.Min(batch, connections - done); i++)
            {
                var client = new Socket(SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                tasks.Add(client.ConnectAsync(endpoint));
            }

            await Task.WhenAll(tasks).ConfigureAwait(false);
            foreach (var client in clients)
            {
                client.Dispose();
            }

            clients.Clear();
        }
    }
}
