using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// RFC 6749 3.1 and 3.2: a request parameter must not appear more than once. OpenIddict reads a repeated one as an
/// array, which its single-valued accessors then see as absent: <c>scope=openid&amp;scope=identity</c> gave a token
/// with no scope and no audience. Refused instead, except for RFC 8707's resource, which is meant to repeat.
/// </summary>
public sealed class RejectRepeatedParameters<TContext> : IOpenIddictServerHandler<TContext> where TContext : BaseValidatingContext
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } = OpenIddictServerHandlerDescriptor.CreateBuilder<TContext>()
        .UseSingletonHandler<RejectRepeatedParameters<TContext>>()
        .SetOrder(int.MinValue + 100_000)
        .SetType(OpenIddictServerHandlerType.Custom)
        .Build();

    public ValueTask HandleAsync(TContext context)
    {
        if (context.Transaction.Request is not { } request)
            return ValueTask.CompletedTask;
        foreach (var (name, value) in request.GetParameters())
        {
            // A repeated form field is read as an array of strings.
            if (name != OpenIddictConstants.Parameters.Resource && value.GetRawValue() is System.Collections.Immutable.ImmutableArray<string?> { Length: > 1 })
            {
                context.Reject(OpenIddictConstants.Errors.InvalidRequest, $"The '{name}' parameter must not be repeated.");
                break;
            }
        }
        return ValueTask.CompletedTask;
    }
}
