using System.Collections.Generic;
using System.Net.Sockets;
using Kestrel.ReusePort.Internal.Handoff.Client;
using Kestrel.ReusePort.Internal.Handoff.Server;

namespace Kestrel.ReusePort.Internal.Handoff;

/// <summary>
/// An endpoint's listening sockets, of which the first <see cref="Inherited"/> came from <see cref="Predecessor"/>
/// (whose handoff connection stays open, to ask it to stop), and the <see cref="Server"/> that offers them on, not
/// started yet; both null without socket handoff.
/// </summary>
internal sealed record TakenOverSockets(List<Socket> Sockets, int Inherited, Predecessor? Predecessor, HandoffServer? Server);
