using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Identity.Server.Data.Migrations.PostgreSql
{
    /// <inheritdoc />
    public partial class SessionRefreshTokens : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "RefreshTokenId",
                table: "Sessions",
                type: "character varying(64)",
                maxLength: 64,
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "RefreshTokenId",
                table: "Sessions");
        }
    }
}
