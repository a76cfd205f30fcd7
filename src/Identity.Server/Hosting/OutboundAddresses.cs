using System.Net;
using System.Net.Sockets;

namespace Identity.Server.Hosting;

/// <summary>
/// Where the server itself may send a request on a URL someone else gave it (webhook receivers, clients' key sets at
/// their jwks_uri). The URL must be http(s); and unless private networks are allowed, every address the host
/// resolves to must be public, checked again at connection time (a name that resolved to a public address when the
/// URL was saved can point inside the network later: DNS rebinding). Otherwise anyone allowed to save a URL could
/// make the server probe its own network (SSRF).
/// </summary>
public static class OutboundAddresses
{
    public static string? ProblemWithUrl(string? url, bool allowPrivate, string field = "url")
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http"))
            return $"{field} must be an absolute http or https URL.";
        if (!string.IsNullOrEmpty(uri.UserInfo) || !string.IsNullOrEmpty(uri.Fragment))
            return $"{field} must not carry credentials or a fragment.";
        if (!allowPrivate && IPAddress.TryParse(uri.IdnHost, out var literal) && !IsPublic(literal))
            return $"{field} points to a loopback, private or link-local address.";
        if (!allowPrivate && uri.IdnHost.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            return $"{field} points to a loopback, private or link-local address.";
        return null;
    }

    public static bool IsPublic(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        if (IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
            return false;
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            if (EmbeddedIPv4(address) is { } inner)
                return IsPublic(inner);
            var v6 = address.GetAddressBytes();
            // Teredo (2001::/32) tunnels to an address it hides; documentation (2001:db8::/32) is routed nowhere.
            if (v6[0] == 0x20 && v6[1] == 0x01 && ((v6[2] == 0 && v6[3] == 0) || (v6[2] == 0x0d && v6[3] == 0xb8)))
                return false;
            return !(address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6UniqueLocal || address.IsIPv6Multicast);
        }
        var b = address.GetAddressBytes();
        return !(b[0] == 10 || b[0] == 127 || b[0] == 0 || (b[0] == 172 && b[1] >= 16 && b[1] <= 31) || (b[0] == 192 && b[1] == 168) ||
                 (b[0] == 169 && b[1] == 254) || (b[0] == 100 && b[1] >= 64 && b[1] <= 127) || b[0] >= 224 ||
                 // IETF protocol assignments (192.0.0.0/24) and benchmarking networks (198.18.0.0/15): not the Internet.
                 (b[0] == 192 && b[1] == 0 && b[2] == 0) || (b[0] == 198 && b[1] is 18 or 19));
    }

    static readonly byte[] Nat64Prefix = [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0];

    /// <summary>
    /// The IPv4 address an IPv6 one leads to: NAT64 (64:ff9b::/96), 6to4 (2002::/16) and the old IPv4-compatible form
    /// (::a.b.c.d). Judged as itself, or 64:ff9b::7f00:1 would be a way to 127.0.0.1.
    /// </summary>
    static IPAddress? EmbeddedIPv4(IPAddress v6)
    {
        var b = v6.GetAddressBytes();
        if (b[0] == 0x20 && b[1] == 0x02)
            return new IPAddress(b.AsSpan(2, 4));
        if (b.AsSpan(0, 12).SequenceEqual(Nat64Prefix) || b.AsSpan(0, 12).IndexOfAnyExcept((byte)0) < 0)
            return new IPAddress(b.AsSpan(12, 4));
        return null;
    }

    /// <summary>An HTTP handler that connects only to public addresses (unless allowed), whatever DNS says.</summary>
    public static SocketsHttpHandler Handler(bool allowPrivate) => new()
    {
        AllowAutoRedirect = false,
        // Through a proxy, the address checked below would be the proxy's, and the proxy would reach anything.
        UseProxy = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        ConnectCallback = async (context, cancellationToken) =>
        {
            var addresses = await Dns.GetHostAddressesAsync(context.DnsEndPoint.Host, cancellationToken);
            var allowed = addresses.Where(a => allowPrivate || IsPublic(a)).ToArray();
            if (allowed.Length == 0)
                throw new HttpRequestException($"{context.DnsEndPoint.Host} resolves to no public address.");
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(allowed, context.DnsEndPoint.Port, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };
}
