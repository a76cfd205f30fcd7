using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Identity.Server.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class GroupOrganizations : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Groups_NormalizedName",
                table: "Groups");

            migrationBuilder.AddColumn<string>(
                name: "OrganizationId",
                table: "Groups",
                type: "TEXT",
                maxLength: 64,
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "IX_Groups_OrganizationId_NormalizedName",
                table: "Groups",
                columns: new[] { "OrganizationId", "NormalizedName" },
                unique: true);

            migrationBuilder.AddForeignKey(
                name: "FK_Groups_Organizations_OrganizationId",
                table: "Groups",
                column: "OrganizationId",
                principalTable: "Organizations",
                principalColumn: "Id",
                onDelete: ReferentialAction.Cascade);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropForeignKey(
                name: "FK_Groups_Organizations_OrganizationId",
                table: "Groups");

            migrationBuilder.DropIndex(
                name: "IX_Groups_OrganizationId_NormalizedName",
                table: "Groups");

            migrationBuilder.DropColumn(
                name: "OrganizationId",
                table: "Groups");

            migrationBuilder.CreateIndex(
                name: "IX_Groups_NormalizedName",
                table: "Groups",
                column: "NormalizedName",
                unique: true);
        }
    }
}
