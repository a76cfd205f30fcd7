using Microsoft.AspNetCore.Identity;

namespace Identity.Server.Data;

public sealed class User : IdentityUser
{
    public string? Name { get; set; }
    public DateTimeOffset CreatedAt { get; set; } = DateTimeOffset.UtcNow;
    public DateTimeOffset? LastLoginAt { get; set; }
}

public sealed class Role : IdentityRole
{
    public Role() { }
    public Role(string name) : base(name) { }
    public string? Description { get; set; }
}
